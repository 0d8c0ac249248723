import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ErrorCodes } from '../../src/errors';
import { JqEvaluator } from '../../src/mapping/jq';
import { MappingError, PayloadMappings } from '../../src/mapping/payload-mapping';

/** Port's agent's mapping rules, without the broker: what is read, what is refused, what each field becomes. */
describe('PayloadMappings', () => {
  const jq = new JqEvaluator({ timeoutMs: 300, maxOutputChars: 10_000 }, { GITLAB_URL: 'https://gl.test/', acme_api: 'trigger-token' });
  afterAll(() => jq.close());
  const dir = mkdtempSync(join(tmpdir(), 'mapping-'));
  let n = 0;
  const file = (content: string) => {
    const path = join(dir, `m${n++}.json`);
    writeFileSync(path, content);
    return path;
  };
  const refusal = async (content: string): Promise<ConfigError> => {
    try {
      await PayloadMappings.load(file(content), jq);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('expected a ConfigError');
  };

  it('stops the start on a file that is not JSON, not a list, or holds an expression that does not compile, naming the mapping and field', async () => {
    expect((await refusal('[{"enabled": true,')).message).toMatch(/^CONTROL_THE_PAYLOAD_CONFIG_PATH: .*is not valid JSON/);
    expect((await refusal('{"enabled": true}')).message).toContain('expected a list of mappings');
    expect((await refusal('[{"enabled": true, "body": ["a"]}]')).message).toContain('mapping 0, body');
    const compile = await refusal('[{"enabled": true}, {"enabled": true, "body": {"deep": {"x": ".a |||"}}}]');
    expect(compile.message).toMatch(/mapping 1, body\.deep\.x: jq: compile error/);
    expect((await refusal('[{"enabled": ".a == ("}]')).message).toMatch(/mapping 0, enabled: jq: compile error/);
    expect((await refusal('[{"report": {"status": "if"}}]')).message).toMatch(/mapping 0, report\.status: jq: compile error/);
  });

  it('picks the first enabled mapping: true, or jq giving exactly true; pydantic’s boolean strings count as booleans', async () => {
    const m = await PayloadMappings.load(
      file(JSON.stringify([
        { enabled: false, url: '"http://never"' },
        { enabled: '.kind == "a"', url: '"http://a"' },
        { enabled: '.kind', url: '"http://truthy-but-not-true"' },
        { enabled: 'yes', url: '"http://fallback"' },
      ])),
      jq,
    );
    expect((await m.find({ kind: 'a' }))!.index).toBe(1);
    // "b" is truthy in jq, but only `true` enables a mapping.
    expect((await m.find({ kind: 'b' }))!.index).toBe(3);
    const none = await PayloadMappings.load(file('[{"enabled": ".x == 1"}]'), jq);
    expect(await none.find({ x: 2 })).toBeNull();
    // An enabled expression that fails is said, not taken for "no".
    const failing = await PayloadMappings.load(file('[{"enabled": ".x | test(\\"a\\")"}]'), jq);
    await expect(failing.find({ x: 1 })).rejects.toThrow(/payload mapping: mapping 0, enabled failed/);
  });

  it('evaluates every string as jq, walks objects and lists, keeps literals, and drops members that are empty objects', async () => {
    const m = await PayloadMappings.load(
      file(JSON.stringify([{ body: { a: '.x', nested: { b: '.x + 1', empty: {} }, gone: {}, list: ['.x', 7, true, null, { c: '"lit"' }], n: 3 } }])),
      jq,
    );
    const mapping = m.mappings[0]!;
    expect(await m.evaluate(mapping, mapping.request, { x: 1 })).toEqual({ body: { a: 1, nested: { b: 2 }, list: [1, 7, true, null, { c: 'lit' }], n: 3 } });
  });

  it('names the mapping and field of an expression that fails or runs too long, never the values', async () => {
    const m = await PayloadMappings.load(file(JSON.stringify([{ headers: { ok: '"v"', bad: '.secret | error' }, body: { slow: 'last(range(1e12))' } }])), jq);
    const mapping = m.mappings[0]!;
    const err = (await m.evaluate(mapping, { headers: mapping.request.headers }, { secret: 'hunter2' }).catch((e: unknown) => e)) as MappingError;
    expect(err).toBeInstanceOf(MappingError);
    expect(err.code).toBe(ErrorCodes.MAPPING_FAILED);
    expect(err.message).toBe('payload mapping: mapping 0, headers.bad failed (a jq error)');
    expect(err.message).not.toContain('hunter2');
    const slow = (await m.evaluate(mapping, { body: mapping.request.body }, {}).catch((e: unknown) => e)) as MappingError;
    expect(slow.message).toMatch(/^payload mapping: mapping 0, body\.slow ran past its budget/);
  });

  it('has the agent’s default mapping: GitLab’s trigger URL, token from env and string variables; then any url and method', async () => {
    const m = await PayloadMappings.load(undefined, jq);
    const gitlab = { payload: { action: { invocationMethod: { type: 'GITLAB', groupName: 'acme', projectName: 'api', omitPayload: true } }, properties: { ref: 'dev', n: 2, on: true } } };
    const g = (await m.find(gitlab))!;
    expect(g.index).toBe(0);
    expect(await m.evaluate(g, g.request, gitlab)).toEqual({
      url: 'https://gl.test/api/v4/projects/acme%2Fapi/trigger/pipeline',
      body: { ref: 'dev', token: 'trigger-token', variables: { ref: 'dev', n: '2', on: 'true' }, port_payload: {} },
    });
    const webhook = { payload: { action: { invocationMethod: { type: 'WEBHOOK', url: 'https://hooks.test/x' } } } };
    const w = (await m.find(webhook))!;
    expect(await m.evaluate(w, w.request, webhook)).toEqual({ url: 'https://hooks.test/x', method: 'POST' });
    expect(g.report).toEqual({ link: '.response.json.web_url', externalRunId: '.response.json.id | tostring' });
  });
});
