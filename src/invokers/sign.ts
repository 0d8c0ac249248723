import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseLossless, pythonJson } from '../model/lossless-json';

/**
 * Port's signature scheme (PORT-REFERENCE.md, WEBHOOK and "Signatures on
 * Kafka messages"): `v1,` + base64(HMAC-SHA256(secret, timestamp + "." + body)),
 * where timestamp is seconds since the epoch, as a string.
 */
export function portSignature(secret: string, timestamp: string, body: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

export function portTimestamp(now = Date.now()): string {
  return String(Math.floor(now / 1000));
}

/** The two headers Port sends with a signed request. */
export function signatureHeaders(secret: string, body: string | Buffer, now = Date.now()): { 'X-Port-Timestamp': string; 'X-Port-Signature': string } {
  const timestamp = portTimestamp(now);
  return { 'X-Port-Timestamp': timestamp, 'X-Port-Signature': portSignature(secret, timestamp, body) };
}

export interface VerifyOptions {
  /** Largest accepted distance between the timestamp and now. Default 300 s. */
  toleranceSeconds?: number;
  now?: number;
  /**
   * Also accept a signature over the compact re-serialisation of the body
   * (Python's `json.dumps(separators=(",", ":"), ensure_ascii=False)`):
   * Port's agent signs that but sends the body with spaces. One receiver
   * can then serve both the router and Port's agent.
   */
  compactBody?: boolean;
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'mismatch' };

/**
 * Checks a Port signature for receivers (webhook servers, agents): the
 * timestamp must be within the tolerance (to stop replays), and the
 * signature is compared in constant time. `body` must be the exact bytes
 * received. Several signatures separated by spaces are accepted (rotation).
 */
export function verifyPortSignature(
  secret: string,
  body: string | Buffer,
  timestamp: string | undefined | null,
  signature: string | undefined | null,
  options: VerifyOptions = {},
): VerifyResult {
  if (!timestamp || !signature) return { ok: false, reason: 'missing' };
  if (!/^\d+$/.test(timestamp)) return { ok: false, reason: 'malformed' };
  const tolerance = options.toleranceSeconds ?? 300;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: 'expired' };
  const bodies = [body];
  if (options.compactBody) {
    try {
      bodies.push(pythonJson(parseLossless(Buffer.isBuffer(body) ? body.toString('utf8') : body)));
    } catch {
      // not JSON: only the exact bytes can match
    }
  }
  for (const b of bodies) {
    const expected = Buffer.from(portSignature(secret, timestamp, b));
    for (const candidate of signature.split(' ')) {
      const given = Buffer.from(candidate.trim());
      if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
    }
  }
  return { ok: false, reason: 'mismatch' };
}
