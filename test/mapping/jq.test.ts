import { ErrorCodes } from '../../src/errors';
import { JqError, JqEvaluator } from '../../src/mapping/jq';

/** jq through Port's binding, in its own thread, with a time and an output budget per evaluation. */
describe('JqEvaluator', () => {
  const jq = new JqEvaluator({ timeoutMs: 300, maxOutputChars: 10_000 });
  afterAll(() => jq.close());

  const failure = async (p: Promise<unknown>): Promise<JqError> => {
    try {
      await p;
    } catch (err) {
      if (err instanceof JqError) return err;
      throw err;
    }
    throw new Error('expected a JqError');
  };

  it('evaluates as Port’s binding does: the first output, null for none, single-quoted strings', async () => {
    expect(await jq.evaluate('.payload.properties.version', { payload: { properties: { version: '1.4.2' } } })).toBe('1.4.2');
    expect(await jq.evaluate('{url: ("https://x/" + .id), n: (.xs | length)}', { id: 'r1', xs: [1, 2] })).toEqual({ url: 'https://x/r1', n: 2 });
    expect(await jq.evaluate('.xs[]', { xs: [7, 8] })).toBe(7);
    expect(await jq.evaluate('empty', {})).toBeNull();
    expect(await jq.evaluate(".env == 'prod'", { env: 'prod' })).toBe(true);
    // Concurrent evaluations each get their own answer, in order.
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => jq.evaluate('.n * 2', { n: i })));
    expect(many).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
  });

  it('keeps the environment out unless given: then exactly what was given, never the router’s own', async () => {
    process.env.JQ_TEST_SECRET = 'router-secret';
    expect(await jq.evaluate('env', {})).toEqual({});
    const withEnv = new JqEvaluator({ timeoutMs: 300, maxOutputChars: 10_000 }, { PORT_ORG_ID: 'org_acme' });
    try {
      expect(await withEnv.evaluate('env.PORT_ORG_ID', {})).toBe('org_acme');
      expect(await withEnv.evaluate('$ENV.PORT_ORG_ID', {})).toBe('org_acme');
      expect(await withEnv.evaluate('env.JQ_TEST_SECRET', {})).toBeNull();
    } finally {
      await withEnv.close();
    }
  });

  it('tells a compile error from a runtime one; check() names where the expression is', async () => {
    expect((await failure(jq.evaluate('.a |||', {}))).code).toBe(ErrorCodes.JQ_COMPILE);
    const runtime = await failure(jq.evaluate('error("boom")', {}));
    expect([runtime.code, runtime.message]).toEqual([ErrorCodes.JQ_FAILED, expect.stringContaining('boom')]);
    await expect(jq.check('.a |||', 'mapping 0, body')).rejects.toThrow(/^mapping 0, body: jq: compile error/);
    // A runtime error over null is not a compile error.
    await expect(jq.check('.a + 1 | error("needs input")', 'mapping 0, url')).resolves.toBeUndefined();
  });

  it('an expression that runs past its budget is stopped, and the next one runs', async () => {
    const started = Date.now();
    expect((await failure(jq.evaluate('last(range(1e12))', {}))).code).toBe(ErrorCodes.JQ_TIMEOUT);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await jq.evaluate('.ok', { ok: 'still here' })).toBe('still here');
  });

  it('an output over its budget is refused, not handed on', async () => {
    const big = await failure(jq.evaluate('[range(100000)]', {}));
    expect([big.code, big.message]).toEqual([ErrorCodes.JQ_OUTPUT_TOO_LARGE, expect.stringContaining('over 10000')]);
    expect(await jq.evaluate('[range(3)]', {})).toEqual([0, 1, 2]);
  });
});
