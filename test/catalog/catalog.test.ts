import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalog, ActionCatalog, inputProblems } from '../../src/catalog/catalog';
import { actionDefinitionSchema } from '../../src/catalog/definition';
import { decodeTrigger } from '../../src/codec/decode';
import { ErrorCodes, RejectedEventError } from '../../src/errors';
import type { JsonObject } from '../../src/model/json';
import { samplePortMessage } from '../../src/sample';

const deploy = {
  identifier: 'deploy_service',
  title: 'Deploy',
  trigger: 'DAY-2',
  userInputs: {
    properties: {
      version: { type: 'string', title: 'Version' },
      environment: { type: 'string', enum: ['staging', 'production'], default: 'staging' },
      replicas: { type: 'number', default: 2 },
      dryRun: { type: 'boolean' },
      regions: { type: 'array', items: { type: 'string', enum: ['eu', 'us'] } },
    },
    required: ['version'],
  },
  invocationMethod: { type: 'WEBHOOK', url: 'https://deploy.example/hook', synchronized: true },
};

async function runWith(properties: JsonObject, action = 'deploy_service') {
  const r = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId: 'r_cat', action, properties, invocationMethod: { type: 'KAFKA' } }))));
  if (!r.ok) throw new Error(r.error.message);
  return r.run;
}

describe('ActionCatalog', () => {
  const catalog = new ActionCatalog([actionDefinitionSchema.parse(deploy)]);

  it('makes the definition’s invocationMethod authoritative and applies defaults', async () => {
    const out = catalog.apply(await runWith({ version: '1.0.0' }));
    if (out instanceof RejectedEventError) throw out;
    expect(out.invocationMethod).toEqual({ type: 'WEBHOOK', url: 'https://deploy.example/hook', synchronized: true, agent: false });
    expect(out.properties).toEqual({ version: '1.0.0', environment: 'staging', replicas: 2 });
    expect(Object.isFrozen(out)).toBe(true);
  });

  it.each([
    [{}, 'version: required'],
    [{ version: 1 }, 'version: expected string, got number'],
    [{ version: '1', environment: 'dev' }, 'environment: "dev" is not one of'],
    [{ version: '1', dryRun: 'yes' }, 'dryRun: expected boolean'],
    [{ version: '1', regions: ['eu', 'mars'] }, 'regions: items ["mars"]'],
  ])('rejects inputs %j', async (props, message) => {
    const out = catalog.apply(await runWith(props as JsonObject));
    expect(out).toBeInstanceOf(RejectedEventError);
    expect((out as RejectedEventError).code).toBe(ErrorCodes.INPUT_INVALID);
    expect((out as RejectedEventError).message).toContain(message);
  });

  it('rejects actions it does not define', async () => {
    const out = catalog.apply(await runWith({}, 'delete_everything'));
    expect((out as RejectedEventError).code).toBe(ErrorCodes.UNKNOWN_ACTION);
  });

  it('loads a folder of definitions, including Port’s newer trigger form', () => {
    const dir = mkdtempSync(join(tmpdir(), 'catalog-'));
    writeFileSync(join(dir, 'a.json'), JSON.stringify(deploy));
    writeFileSync(
      join(dir, 'b.json'),
      JSON.stringify([
        {
          identifier: 'create_repo',
          trigger: { type: 'self-service', operation: 'CREATE', userInputs: { properties: { name: { type: 'string' } }, required: ['name'] } },
          invocationMethod: { type: 'GITHUB', org: 'acme', repo: 'infra', workflow: 'create.yml' },
        },
      ]),
    );
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const loaded = loadCatalog(dir);
    expect(loaded.size).toBe(2);
    expect(loaded.get('create_repo')?.invocationMethod.type).toBe('GITHUB');
  });

  it('names the file and field of a broken definition', () => {
    const dir = mkdtempSync(join(tmpdir(), 'catalog-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ identifier: 'x', invocationMethod: {} }));
    expect(() => loadCatalog(file)).toThrow(/bad\.json: invalid action definition at invocationMethod\.type/);
    writeFileSync(file, '{ nope');
    expect(() => loadCatalog(file)).toThrow(/bad\.json: not valid JSON/);
  });

  it('checks bounds, formats and patterns as a form does, never showing a censored value', () => {
    const def = actionDefinitionSchema.parse({
      identifier: 'bounded',
      userInputs: {
        properties: {
          count: { type: 'integer', minimum: 1, maximum: 5 },
          email: { type: 'string', format: 'email' },
          site: { type: 'string', format: 'url' },
          at: { type: 'string', format: 'date-time' },
          name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', minLength: 3, maxLength: 12 },
          tags: { type: 'array', minItems: 1, maxItems: 2 },
          token: { type: 'string', pattern: '^tok_', encryption: 'aes256-gcm' },
        },
      },
      invocationMethod: { type: 'KAFKA' },
    });
    const good = { count: 3, email: 'a@b.io', site: 'https://x.io', at: '2026-12-03T10:00:00Z', name: 'svc-1', tags: ['a'], token: 'tok_1' };
    expect(inputProblems(def, good, ['token']).problems).toEqual([]);
    const bad = { count: 9, email: 'nope', site: 'javascript:alert(1)', at: '2026-13-45', name: 'Svc', tags: [], token: 'secret-value' };
    expect(inputProblems(def, bad, ['token']).problems).toEqual([
      { field: 'count', message: 'must be at most 5' },
      { field: 'email', message: '"nope" is not a valid email' },
      { field: 'site', message: '"javascript:alert(1)" is not a valid url' },
      { field: 'at', message: '"2026-13-45" is not a valid date-time' },
      { field: 'name', message: '"Svc" does not match ^[a-z][a-z0-9-]*$' },
      { field: 'tags', message: 'must have at least 1 item' },
      { field: 'token', message: 'the (censored) value does not match ^tok_' },
    ]);
    expect(() => actionDefinitionSchema.parse({ identifier: 'x', userInputs: { properties: { n: { type: 'string', pattern: '(' } } }, invocationMethod: { type: 'KAFKA' } })).toThrow('not a valid regular expression');
  });
});
