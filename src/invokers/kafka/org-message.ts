import { JsonLike, JsonMap, member, parseLossless, pythonJson } from '../../model/lossless-json';
import { PortRunMessage, portMessageJson, toPortMessage } from '../../codec/port-message';
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
  const message: PortRunMessage = toPortMessage(run);
  const headers: Record<string, string> = { 'x-run-id': run.runId };
  if (!secret) return { body: portMessageJson(message, run), headers };

  const timestamp = portTimestamp(now);
  const isGitlab = run.invocationMethod.type === 'GITLAB';
  // Compact, non-ASCII kept, numbers and key order as Python writes them:
  // what Port's agent recomputes from the message before it checks.
  if (!isGitlab) message.headers = {};
  const inner = portSignature(secret, timestamp, portMessageJson(message, run));
  message.headers = { 'X-Port-Signature': inner, 'X-Port-Timestamp': timestamp };
  const body = portMessageJson(message, run);
  headers['x-port-timestamp'] = timestamp;
  headers['x-port-signature'] = portSignature(secret, timestamp, body);
  return { body, headers };
}

/**
 * The agent's side: checks the in-body signature of a message read from the
 * org topic. Mirrors Port's agent: parse (as Python does: numbers and key
 * order kept), remove the two keys (or, for GITLAB, the whole `headers`
 * object), serialise compactly, compare.
 */
export function verifyOrgMessageBody(body: string, secret: string, options: VerifyOptions = {}): VerifyResult {
  let parsed: JsonLike;
  try {
    parsed = parseLossless(body);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (!(parsed instanceof JsonMap)) return { ok: false, reason: 'missing' };
  const headers = parsed.entries.get('headers');
  if (!(headers instanceof JsonMap)) return { ok: false, reason: 'missing' };
  const signature = headers.entries.get('X-Port-Signature');
  const timestamp = headers.entries.get('X-Port-Timestamp');
  if (typeof signature !== 'string' || typeof timestamp !== 'string') return { ok: false, reason: 'missing' };
  const type = member(member(member(parsed.entries.get('payload'), 'action'), 'invocationMethod'), 'type');
  if (type === 'GITLAB') parsed.entries.delete('headers');
  else {
    const rest = new JsonMap();
    for (const [k, v] of headers.entries) if (k !== 'X-Port-Signature' && k !== 'X-Port-Timestamp') rest.entries.set(k, v);
    parsed.entries.set('headers', rest);
  }
  return verifyPortSignature(secret, pythonJson(parsed), timestamp, signature, options);
}
