import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { decodeTrigger } from '../../src/codec/decode';
import { needsLossless, parseLossless, pythonFloat, pythonJson } from '../../src/model/lossless-json';
import { portMessageJson, toPortMessage } from '../../src/codec/port-message';
import { triggerBody, gitlabTarget } from '../../src/invokers/gitlab/invoker';
import { buildOrgMessage } from '../../src/invokers/kafka/org-message';
import { verifyPortSignature, portSignature } from '../../src/invokers/sign';
import type { JsonObject } from '../../src/model/json';
import { samplePortMessage } from '../../src/sample';

/**
 * Port's agent re-serialises a message with Python before checking its
 * signature. For generated JSON of every kind, the router's output must be
 * exactly what Python's json.loads + json.dumps(separators=(",", ":"),
 * ensure_ascii=False) gives back, and the producer's values must come
 * through unchanged. Python itself judges, in one process per test.
 */
const PYTHON = `
import base64, hashlib, hmac, json, sys
def canon(v): return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
out = []
for line in sys.stdin:
    case = json.loads(line)
    kind = case["kind"]
    if kind == "float":
        out.append(repr(float(case["token"])))
    elif kind == "canonical":
        out.append(canon(json.loads(case["text"])))
    elif kind == "message":
        body, secret, original = case["body"], case["secret"], case["original"]
        msg = json.loads(body)
        fixed = canon(msg) == body
        sig = msg["headers"]["X-Port-Signature"]; ts = msg["headers"]["X-Port-Timestamp"]
        if msg["payload"]["action"]["invocationMethod"]["type"] == "GITLAB":
            del msg["headers"]
        else:
            del msg["headers"]["X-Port-Signature"]; del msg["headers"]["X-Port-Timestamp"]
        mac = hmac.new(secret.encode(), (ts + "." + canon(msg)).encode(), hashlib.sha256).digest()
        signed = hmac.compare_digest(sig, "v1," + base64.b64encode(mac).decode())
        same = canon(msg["payload"]["properties"]) == canon(json.loads(original))
        out.append("ok" if fixed and signed and same else "fixed=%s signed=%s same=%s" % (fixed, signed, same))
print(json.dumps(out))
`;

function python(cases: object[]): string[] {
  const out = spawnSync('python3', ['-c', PYTHON], { input: cases.map((c) => JSON.stringify(c)).join('\n'), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout) as string[];
}

// Number tokens as producers write them: every magnitude and form.
const numberToken = fc.oneof(
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? '-0.0' : String(d))),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }).map((d) => d.toExponential()),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e-3, max: 1e-3 }).map((d) => d.toExponential().toUpperCase()),
  fc.constantFrom('0', '-0', '0.0', '-0.0', '1.0', '1e5', '1E-7', '5e-05', '0.00005', '1e16', '1e+16', '1.5e16', '12345678901234567890', '9007199254740993', '1e-9', '0.0001', '123456789012345.6', '2.5E-300'),
);
// Strings over every Unicode plane (no lone surrogates: those are refused), with escapes.
const stringText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"\\u00e9\\/\\"\\\\\\n\\t"', '"\\ud83d\\ude00 emoji"', '"\\u0000\\u001f\\u007f"', '"\u2028\u2029"'),
);
const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('0', '1', '10', '42', '4294967294', '4294967295', '-1', '01', 'a', 'version'));
const space = fc.constantFrom('', ' ', '\n  ', '\t');
const { value: jsonText } = fc.letrec<{ value: string; object: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberToken,
    stringText,
    fc.constantFrom('true', 'false', 'null'),
    tie('object'),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  ),
  object: fc
    .array(fc.tuple(key, space, tie('value')), { maxLength: 5 })
    .map((pairs) => `{${pairs.map(([k, s, v]) => `${s}${JSON.stringify(k)}${s}:${s}${v}`).join(',')}}`),
}));
const propertiesText = fc.array(fc.tuple(key, jsonText), { maxLength: 6 }).map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')}}`);

/** A Port run message whose user inputs are `properties` (JSON text), spliced in as written. */
function messageWith(properties: string, type: string): Buffer {
  const method: JsonObject = type === 'GITLAB' ? { type, agent: true, groupName: 'acme', projectName: 'api' } : { type, agent: true, url: 'https://example.com/h' };
  const text = JSON.stringify(samplePortMessage({ runId: 'r_gen', invocationMethod: method, properties: { placeholder: true } }));
  return Buffer.from(text.replace('{"placeholder":true}', properties));
}

describe('what the router writes is what Python writes', () => {
  const seed = Number(process.env.FC_SEED ?? Date.now() % 1_000_000);
  beforeAll(() => process.stdout.write(`python-fidelity seed ${seed} (FC_SEED=${seed} reproduces)\n`));

  it('floats: pythonFloat is repr() for every magnitude', () => {
    const doubles = fc.sample(fc.double({ noNaN: true }), { numRuns: 3000, seed });
    const fixed = [5e-5, 1e16, 1.5e16, 1e-4, 1e15, 0.1, 100, -0, 1e22, 1.7976931348623157e308, 5e-324, 123456789.123];
    const all = [...fixed, ...doubles].filter((d) => Number.isFinite(d));
    const expected = python(all.map((d) => ({ kind: 'float', token: Object.is(d, -0) ? '-0.0' : String(d) })));
    expect(all.map(pythonFloat)).toEqual(expected);
  });

  it('generated JSON: pythonJson(parseLossless(text)) is json.dumps(json.loads(text))', () => {
    const texts = fc.sample(jsonText, { numRuns: 400, seed });
    const expected = python(texts.map((text) => ({ kind: 'canonical', text })));
    expect(texts.map((t) => pythonJson(parseLossless(t)))).toEqual(expected);
    // Wherever the quick check says JSON.parse is enough, JSON.stringify gives Python's text too.
    const quick = texts.filter((t) => !needsLossless(t));
    const quickExpected = python(quick.map((text) => ({ kind: 'canonical', text })));
    expect(quick.map((t) => JSON.stringify(JSON.parse(t)))).toEqual(quickExpected);
  });

  it.each(['WEBHOOK', 'GITLAB'])('generated user inputs: Port agent accepts every signed %s message, values unchanged', async (type) => {
    const cases = fc.sample(propertiesText, { numRuns: 250, seed: seed + 1 });
    const messages: object[] = [];
    for (const original of cases) {
      const decoded = await decodeTrigger(messageWith(original, type));
      if (!decoded.ok) throw new Error(`${decoded.error.message} in ${original}`);
      const { body } = buildOrgMessage(decoded.run, 's3cret');
      messages.push({ kind: 'message', body, secret: 's3cret', original });
    }
    const verdicts = python(messages);
    const failed = verdicts.map((v, i) => [v, cases[i]]).filter(([v]) => v !== 'ok');
    expect(failed).toEqual([]);
  });

  it('fixed cases: 5e-05, integers past 2^53, integer-like keys reach the org topic as written', async () => {
    const original = '{"errorRateThreshold": 5e-05, "big": 12345678901234567890, "2": "two", "1": "one", "ratio": 1.0, "neg": -0.0, "tiny": 0.00001}';
    const decoded = await decodeTrigger(messageWith(original, 'WEBHOOK'));
    if (!decoded.ok) throw new Error(decoded.error.message);
    const { body } = buildOrgMessage(decoded.run, 's3cret');
    expect(body).toContain('"properties":{"errorRateThreshold":5e-05,"big":12345678901234567890,"2":"two","1":"one","ratio":1.0,"neg":-0.0,"tiny":1e-05}');
    expect(python([{ kind: 'message', body, secret: 's3cret', original }])).toEqual(['ok']);
    // The run's plain view still reads the values (catalog checks, GitHub inputs).
    expect(decoded.run.properties).toMatchObject({ errorRateThreshold: 5e-5, ratio: 1 });
  });

  it('a lone surrogate is refused at intake, naming it', async () => {
    const decoded = await decodeTrigger(messageWith('{"note": "bad \\ud800 text"}', 'WEBHOOK'));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) {
      expect(decoded.error.code).toBe('INVALID_UNICODE');
      expect(decoded.identity.runId).toBe('r_gen');
    }
    // A well-formed pair passes.
    expect((await decodeTrigger(messageWith('{"note": "\\ud83d\\ude00"}', 'WEBHOOK'))).ok).toBe(true);
  });

  it('GitLab: the run message travels as a top-level port_payload object and as a variable', async () => {
    const decoded = await decodeTrigger(messageWith('{"big": 12345678901234567890, "ref": "main"}', 'GITLAB'));
    if (!decoded.ok) throw new Error(decoded.error.message);
    const target = gitlabTarget(decoded.run, { triggerTokens: { 'acme/api': 't' }, envTokens: {} } as never);
    if (target instanceof Error) throw target;
    const body = triggerBody(target);
    const parsed = JSON.parse(body) as { port_payload: { context: { runId: string } }; variables: Record<string, string> };
    expect(parsed.port_payload.context.runId).toBe('r_gen');
    expect(parsed.variables.big).toBe('12345678901234567890');
    expect(body).toContain('"port_payload":{"action"');
    expect(body).toContain(`"big":12345678901234567890`);
    expect(parsed.variables.port_payload).toBe(portMessageJson(toPortMessage(decoded.run), decoded.run));
  });

  it('verifyPortSignature accepts the spaced body Port\'s agent sends, when asked', () => {
    const compact = '{"a":1,"b":[1.5,"x"]}';
    const spaced = '{"a": 1, "b": [1.5, "x"]}';
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = portSignature('k', ts, compact);
    expect(verifyPortSignature('k', spaced, ts, sig)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPortSignature('k', spaced, ts, sig, { compactBody: true })).toEqual({ ok: true });
    expect(verifyPortSignature('other', spaced, ts, sig, { compactBody: true })).toEqual({ ok: false, reason: 'mismatch' });
  });
});
