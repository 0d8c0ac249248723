import { spawnSync } from 'node:child_process';
import { decodeTrigger } from '../../../src/codec/decode';
import { buildOrgMessage, verifyOrgMessageBody } from '../../../src/invokers/kafka/org-message';
import { portSignature } from '../../../src/invokers/sign';
import type { JsonObject } from '../../../src/model/json';
import { samplePortMessage } from '../../../src/sample';

/**
 * Port's execution agent is Python: it removes the signature keys, dumps the
 * message with json.dumps(separators=(",", ":"), ensure_ascii=False) and
 * compares HMACs. Running those exact steps in Python proves the agent
 * accepts what the router signs, independently of our own verifier.
 */
const PORT_AGENT_CHECK = `
import base64, hashlib, hmac, json, sys
msg = json.loads(sys.stdin.read())
secret = sys.argv[1]
sig = msg["headers"]["X-Port-Signature"]
ts = msg["headers"]["X-Port-Timestamp"]
if msg["payload"]["action"]["invocationMethod"]["type"] == "GITLAB":
    del msg["headers"]
else:
    del msg["headers"]["X-Port-Signature"]
    del msg["headers"]["X-Port-Timestamp"]
body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
mac = hmac.new(secret.encode(), (ts + "." + body).encode(), hashlib.sha256).digest()
print("ok" if hmac.compare_digest(sig, "v1," + base64.b64encode(mac).decode()) else "mismatch")
`;

async function runOf(method: JsonObject, properties?: JsonObject) {
  const r = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId: 'r_sig', invocationMethod: method, properties }))));
  if (!r.ok) throw new Error(r.error.message);
  return r.run;
}

function pythonAgentAccepts(body: string, secret: string): string {
  const out = spawnSync('python3', ['-c', PORT_AGENT_CHECK, secret], { input: body, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return out.stdout.trim();
}

describe('org-topic messages', () => {
  const tricky = { note: 'déploiement ✓ 日本', ratio: 1.5, big: 12345678901234, nested: { list: [1, 'two', null, true] }, quote: 'a "b" \\ c\n' };

  it.each([
    ['WEBHOOK', { type: 'WEBHOOK', agent: true, url: 'https://example.com/h' }],
    ['GITLAB', { type: 'GITLAB', agent: true, groupName: 'acme', projectName: 'api' }],
    ['KAFKA', { type: 'KAFKA' }],
  ])('signs %s runs so that Port’s Python agent accepts them', async (_t, method) => {
    const run = await runOf(method as JsonObject, tricky);
    const { body, headers } = buildOrgMessage(run, 's3cret', 1_700_000_000_000);
    expect(pythonAgentAccepts(body, 's3cret')).toBe('ok');
    expect(pythonAgentAccepts(body, 'wrong')).toBe('mismatch');
    // Kafka headers cover the exact body bytes.
    expect(headers['x-run-id']).toBe('r_sig');
    expect(headers['x-port-timestamp']).toBe('1700000000');
    expect(headers['x-port-signature']).toBe(portSignature('s3cret', '1700000000', body));
    expect(verifyOrgMessageBody(body, 's3cret', { now: 1_700_000_000_000 })).toEqual({ ok: true });
  });

  it('leaves messages unsigned without a secret, with only x-run-id', async () => {
    const run = await runOf({ type: 'KAFKA' });
    const { body, headers } = buildOrgMessage(run, undefined);
    expect(headers).toEqual({ 'x-run-id': 'r_sig' });
    expect(JSON.parse(body)).not.toHaveProperty('headers');
  });

  it('detects a tampered body', async () => {
    const run = await runOf({ type: 'WEBHOOK', agent: true, url: 'https://example.com/h' });
    const { body } = buildOrgMessage(run, 's3cret', 1_700_000_000_000);
    const parsed = JSON.parse(body) as JsonObject;
    (parsed.payload as JsonObject).properties = { version: '6.6.6' };
    expect(verifyOrgMessageBody(JSON.stringify(parsed), 's3cret', { now: 1_700_000_000_000 })).toEqual({ ok: false, reason: 'mismatch' });
    expect(pythonAgentAccepts(JSON.stringify(parsed), 's3cret')).toBe('mismatch');
  });
});
