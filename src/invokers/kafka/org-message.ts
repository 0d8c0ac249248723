import { toPortMessage } from '../../codec/port-message';
import type { JsonObject } from '../../model/json';
import type { FrozenRun } from '../../model/run';
import { VerifyOptions, VerifyResult, portSignature, portTimestamp, verifyPortSignature } from '../sign';

export interface OrgMessage {
  /** The exact bytes written as the message value. */
  body: string;
  /** Kafka headers (x-run-id always; Port signature headers when signing). */
  headers: Record<string, string>;
}

/**
 * Port's run message for the org topic. With a secret it is signed twice,
 * as the contract asks: inside the body the way Port signs messages for its
 * agent (`headers.X-Port-Signature` over the compact JSON without those two
 * keys; for GITLAB runs without the whole `headers` key), and in Kafka
 * headers over the exact body bytes.
 */
export function buildOrgMessage(run: FrozenRun, secret: string | undefined, now = Date.now()): OrgMessage {
  const message: JsonObject = toPortMessage(run);
  const headers: Record<string, string> = { 'x-run-id': run.runId };
  if (!secret) return { body: JSON.stringify(message), headers };

  const timestamp = portTimestamp(now);
  const isGitlab = run.invocationMethod.type === 'GITLAB';
  // JSON.stringify is already compact and keeps non-ASCII characters as is,
  // like Python's json.dumps(separators=(",", ":"), ensure_ascii=False).
  if (!isGitlab) message.headers = {};
  const inner = portSignature(secret, timestamp, JSON.stringify(message));
  message.headers = { 'X-Port-Signature': inner, 'X-Port-Timestamp': timestamp };
  const body = JSON.stringify(message);
  headers['x-port-timestamp'] = timestamp;
  headers['x-port-signature'] = portSignature(secret, timestamp, body);
  return { body, headers };
}

/**
 * The agent's side: checks the in-body signature of a message read from the
 * org topic. Mirrors Port's agent: remove the two keys (or, for GITLAB, the
 * whole `headers` object), serialise compactly in received key order, compare.
 */
export function verifyOrgMessageBody(parsed: JsonObject, secret: string, options: VerifyOptions = {}): VerifyResult {
  const headers = parsed.headers;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return { ok: false, reason: 'missing' };
  const signature = headers['X-Port-Signature'];
  const timestamp = headers['X-Port-Timestamp'];
  if (typeof signature !== 'string' || typeof timestamp !== 'string') return { ok: false, reason: 'missing' };
  const copy: JsonObject = { ...parsed };
  const action = (copy.payload as JsonObject | undefined)?.action as JsonObject | undefined;
  const type = (action?.invocationMethod as JsonObject | undefined)?.type;
  if (type === 'GITLAB') delete copy.headers;
  else {
    const rest: JsonObject = { ...headers };
    delete rest['X-Port-Signature'];
    delete rest['X-Port-Timestamp'];
    copy.headers = rest;
  }
  return verifyPortSignature(secret, JSON.stringify(copy), timestamp, signature, options);
}
