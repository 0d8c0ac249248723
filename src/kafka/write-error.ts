import { ErrorCodes, RouterError, describeError, isRouterError } from '../errors';

/** Broker answers that no retry can change, by what they are about. */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
const REJECTED = new Set(['INVALID_RECORD', 'TOPIC_AUTHORIZATION_FAILED', 'INVALID_TOPIC_EXCEPTION', 'CLUSTER_AUTHORIZATION_FAILED', 'INVALID_REQUIRED_ACKS', 'POLICY_VIOLATION', 'UNSUPPORTED_COMPRESSION_TYPE']);

/** The broker's error type (`MESSAGE_TOO_LARGE`...) anywhere in a kafkajs error's chain of causes. */
function protocolType(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
  }
  return undefined;
}

/**
 * What a failed write means. Record-level refusals (too large, invalid) and
 * topic-level ones (authorization, invalid topic) never succeed: they
 * become `OUTPUT_TOO_LARGE` / `OUTPUT_REJECTED`, not retriable. Everything
 * else (broker unavailable, leader moved, timeouts, connections) is waited
 * out. A RouterError (from the registry codec) keeps its own verdict.
 */
export function classifyWriteError(err: unknown, what: string): RouterError {
  if (isRouterError(err)) return err;
  const type = protocolType(err);
  if (type && TOO_LARGE.has(type)) {
    return new RouterError(ErrorCodes.OUTPUT_TOO_LARGE, `${what}: the broker refused the record as too large (${type})`, { cause: err });
  }
  if (type && REJECTED.has(type)) {
    return new RouterError(ErrorCodes.OUTPUT_REJECTED, `${what}: the broker refused the write (${type})`, { cause: err });
  }
  return new RouterError(ErrorCodes.BACKEND_UNAVAILABLE, `${what}: ${describeError(err)}`, { retriable: true, cause: err });
}

/** True when the failure is about the records themselves, so a shared request should be split. */
export function isRecordLevel(err: unknown): boolean {
  const type = protocolType(err);
  return type !== undefined && (TOO_LARGE.has(type) || REJECTED.has(type));
}
