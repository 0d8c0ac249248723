import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from '../../src/app';
import type { RunStatusUpdate } from '../../src/model/status';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import { ApiClient, CLIENTS, ClientId, apiEnv } from '../helpers/api';
import { runsCli } from '../helpers/processes';
import { tempDir } from '../helpers/cleanup';
import { TestKafka, TestTopics, eventually, json, startApp, testConfig, testTopics } from '../helpers/kafka';

const actions = (hook: string) => [
  {
    identifier: 'deploy_service',
    title: 'Deploy a service',
    trigger: 'DAY-2',
    userInputs: {
      properties: { version: { type: 'string' }, replicas: { type: 'integer', default: 2 }, env: { type: 'string', enum: ['staging', 'prod'] } },
      required: ['version'],
    },
    invocationMethod: { type: 'KAFKA' },
  },
  { identifier: 'create_repo', trigger: 'CREATE', userInputs: { properties: { name: { type: 'string' } }, required: ['name'] }, invocationMethod: { type: 'KAFKA' } },
  { identifier: 'globex_only', trigger: 'CREATE', orgs: ['org_globex'], invocationMethod: { type: 'KAFKA' } },
  { identifier: 'agents_only', trigger: 'CREATE', permissions: { execute: { roles: ['agent'] } }, invocationMethod: { type: 'WEBHOOK', url: hook, synchronized: true } },
  { identifier: 'notify_team', trigger: 'CREATE', userInputs: { properties: { message: { type: 'string' } }, required: ['message'] }, invocationMethod: { type: 'WEBHOOK', url: hook, synchronized: true } },
];

/** Port's execute route (POST /v1/actions/{id}/runs) on the real broker: what Port's SDKs and MCP server call. */
describe('executing an action through the API', () => {
  const k = new TestKafka();
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  const webhook = new WebhookReceiver('execute-signing-secret');
  beforeAll(async () => {
    await webhook.start();
    topics = testTopics();
    const dir = tempDir('execute-actions-');
    writeFileSync(join(dir, 'actions.json'), JSON.stringify(actions(`${webhook.url}/hook`)));
    app = await startApp(testConfig(topics, apiEnv({ ACTIONS_PATH: join(dir, 'actions.json'), SIGNING_SECRET: 'execute-signing-secret', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' })));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await k.close();
    await webhook.close();
  });

  const execute = async (client: ClientId, action: string, body: unknown, headers: Record<string, string> = {}) =>
    api.call('POST', `/v1/actions/${action}/runs`, { token: await api.token(client), body, headers });

  it('202 with the run, found at once, then routed with its inputs, defaults and who triggered it', async () => {
    const res = await execute('acme-ci', 'deploy_service', { properties: { version: '1.4.2', env: 'prod' }, entity: 'payments' });
    expect(res.status).toBe(202);
    const run = res.body.run as { id: string; status: string; action: { identifier: string } };
    expect(run).toMatchObject({ status: 'IN_PROGRESS', action: { identifier: 'deploy_service' } });
    // The first update was applied before the answer.
    expect((await api.as('acme-ci', 'GET', `/v1/actions/runs/${run.id}`)).status).toBe(200);
    const routed = (await k.collect(topics.orgTemplate.replace('{orgId}', 'org_acme'), (ms) => ms.some((m) => m.key?.toString() === run.id))).find((m) => m.key?.toString() === run.id);
    const message = JSON.parse(routed!.value!.toString()) as Record<string, unknown>;
    expect(message).toMatchObject({
      action: 'deploy_service',
      trigger: { by: { orgId: 'org_acme', userId: 'acme-ci' }, origin: 'API' },
      context: { runId: run.id, entity: 'payments' },
      payload: { properties: { version: '1.4.2', env: 'prod', replicas: 2 }, action: { trigger: 'DAY-2' } },
    });
    await eventually(() => app.runs!.store.getRun(run.id)?.invocationType === 'KAFKA', 'the router’s update applied');
    // The KAFKA backend reports the end through Port's API, and a GET reads it back.
    const patched = await api.as('acme-ci', 'PATCH', `/v1/actions/runs/${run.id}`, { status: 'SUCCESS', summary: 'deployed' });
    expect(patched.status).toBe(200);
    expect((await api.as('acme-ci', 'GET', `/v1/actions/runs/${run.id}`)).body.run).toMatchObject({ id: run.id, status: 'SUCCESS', summary: 'deployed', source: 'API' });
  });

  it('a WEBHOOK action: executed, routed, signed, and read back SUCCESS', async () => {
    const res = await execute('acme-ci', 'notify_team', { properties: { message: 'deploy done' } });
    expect(res.status).toBe(202);
    const id = (res.body.run as { id: string }).id;
    let run: Record<string, unknown> = {};
    await eventually(async () => (run = (await api.as('acme-ci', 'GET', `/v1/actions/runs/${id}`)).body.run as Record<string, unknown>).status === 'SUCCESS', 'SUCCESS read back');
    expect(run).toMatchObject({ id, status: 'SUCCESS', properties: { message: 'deploy done' } });
    const call = webhook.received.find((r) => r.runId === id)!;
    expect(call.signatureOk).toBe(true);
    expect(JSON.parse(call.request.body)).toMatchObject({ trigger: { origin: 'API', by: { userId: 'acme-ci' } }, payload: { properties: { message: 'deploy done' } } });
  });

  it('action-router runs create … --wait follows the run to its end: exit 0 for SUCCESS; a refusal exits 1 with the reason', async () => {
    const secret = CLIENTS['acme-ci'].secret;
    const ok = await runsCli(api.base, 'acme-ci', secret, 'create', 'notify_team', '--props', '{"message":"from the CLI"}', '--wait', '--json');
    expect([ok.code, ok.err]).toEqual([0, '']);
    const lines = ok.out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; status: string });
    expect(lines[0]!.status).toBe('IN_PROGRESS');
    expect(lines[lines.length - 1]).toMatchObject({ id: lines[0]!.id, status: 'SUCCESS' });
    const refused = await runsCli(api.base, 'acme-ci', secret, 'create', 'notify_team', '--props', '{}');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('message: required');
  });

  it('the same Idempotency-Key gives the same run, triggered once', async () => {
    const headers = { 'idempotency-key': 'retry-7f3a' };
    const first = await execute('acme-ci', 'create_repo', { properties: { name: 'svc-a' } }, headers);
    const again = await execute('acme-ci', 'create_repo', { properties: { name: 'svc-a' } }, headers);
    expect([first.status, again.status]).toEqual([202, 202]);
    const id = (first.body.run as { id: string }).id;
    expect((again.body.run as { id: string }).id).toBe(id);
    // The same key for another request is refused, and writes nothing.
    const reused = await execute('acme-ci', 'create_repo', { properties: { name: 'svc-b' } }, headers);
    expect([reused.status, reused.body.error]).toEqual([422, 'idempotency_key_reused']);
    // Another client's same key is another run.
    const other = await execute('acme-agent', 'create_repo', { properties: { name: 'svc-a' } }, headers);
    expect((other.body.run as { id: string }).id).not.toBe(id);
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'every trigger routed');
    const triggers = await k.collect(topics.trigger, (ms) => ms.filter((m) => m.key?.toString() === id).length >= 1);
    expect(triggers.filter((m) => m.key?.toString() === id)).toHaveLength(1);
  });

  it('401 without a token; 404 for an unknown action or one offered to other orgs; 403 without the permission or as an operator', async () => {
    expect((await api.call('POST', '/v1/actions/create_repo/runs', { body: { properties: { name: 'x' } } })).status).toBe(401);
    // A forged token: a real one's header and body, signed by someone else.
    const [head, payload] = (await api.token('acme-ci')).split('.');
    expect((await api.call('POST', '/v1/actions/create_repo/runs', { token: `${head}.${payload}.${'A'.repeat(43)}`, body: { properties: { name: 'x' } } })).status).toBe(401);
    const unknown = await execute('acme-ci', 'no_such_action', {});
    expect([unknown.status, unknown.body.error]).toEqual([404, 'not_found']);
    expect((await execute('acme-ci', 'globex_only', {})).status).toBe(404);
    expect((await execute('globex-ci', 'globex_only', {})).status).toBe(202);
    const refused = await execute('acme-ci', 'agents_only', {});
    expect([refused.status, refused.body.error]).toEqual([403, 'forbidden']);
    expect((await execute('acme-agent', 'agents_only', {})).status).toBe(202);
    expect((await execute('operator', 'create_repo', { properties: { name: 'x' } })).status).toBe(403);
  });

  it('422 names each input that fails the catalog’s checks, and the missing entity; nothing is written', async () => {
    // Earlier tests' runs routed (their updates are written before their offsets are committed): the count is still.
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'earlier runs routed');
    const before = await k.messageCount(topics.status);
    const bad = await execute('acme-ci', 'deploy_service', { properties: { env: 'qa', replicas: 'three' } });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ ok: false, error: 'invalid_request' });
    expect(bad.body.details).toEqual([
      { field: 'replicas', message: 'expected integer, got string' },
      { field: 'env', message: '"qa" is not one of ["staging","prod"]' },
      { field: 'version', message: 'required' },
      { field: 'entity', message: 'required for a DAY-2 action' },
    ]);
    const badKey = await execute('acme-ci', 'create_repo', { properties: { name: 'x' } }, { 'idempotency-key': 'spaces are not allowed' });
    expect(badKey.status).toBe(422);
    // Port's rules: an undeclared input, and an entity on a CREATE action.
    const extra = await execute('acme-ci', 'create_repo', { properties: { name: 'x', colour: 'red' }, entity: 'payments' });
    expect(extra.body.details).toEqual([
      { field: 'colour', message: 'not an input of this action' },
      { field: 'entity', message: 'a CREATE action takes no entity' },
    ]);
    // Over Port's 1 MiB.
    const big = await execute('acme-ci', 'create_repo', { properties: { name: 'x'.repeat(2 * 1024 * 1024) } });
    expect([big.status, big.body.error]).toEqual([413, 'payload_too_large']);
    expect(await k.messageCount(topics.status)).toBe(before);
    const updates = (await k.collect(topics.status, (ms) => ms.length >= before)).map((m) => json<RunStatusUpdate>(m));
    expect(updates.some((u) => u.statusLabel === 'triggered' && u.action === 'deploy_service' && u.log?.includes('acme-ci'))).toBe(true);
  });

  it('the console’s execute route: same-origin only, origin UI, only the actions the client may run, and Run again of a run it can see', async () => {
    const token = await api.token('acme-ci');
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) => api.call('POST', path, { token, body, headers });
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'earlier runs routed');
    const before = await k.messageCount(topics.trigger);
    // A form posted from another site is refused, whatever it carries.
    expect((await post('/console/api/actions/create_repo/runs', { properties: { name: 'x' } }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await post('/console/api/actions/create_repo/runs', { properties: { name: 'x' } }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await k.messageCount(topics.trigger)).toBe(before);
    // What the page lists, and what it hides (another org's action, one without permission).
    const listed = await api.call('GET', '/console/api/actions', { token });
    expect((listed.body.actions as { identifier: string }[]).map((a) => a.identifier)).toEqual(['deploy_service', 'create_repo', 'notify_team']);
    expect((await api.call('GET', '/console/api/actions/agents_only', { token })).status).toBe(404);
    const form = await api.call('GET', '/console/api/actions/deploy_service', { token });
    expect(form.body.action).toMatchObject({ operation: 'DAY-2', takesEntity: true, inputs: [{ name: 'version', required: true }, { name: 'replicas', default: 2 }, { name: 'env', enum: ['staging', 'prod'] }] });

    const first = await post('/console/api/actions/create_repo/runs', { properties: { name: 'svc-ui' } });
    expect(first.status).toBe(202);
    const id = (first.body.run as { id: string }).id;
    expect(app.runs!.store.getRun(id)!.origin).toBe('UI');
    const again = await post('/console/api/actions/create_repo/runs', { properties: { name: 'svc-ui' }, repeats: id });
    expect(app.runs!.store.getRun((again.body.run as { id: string }).id)!.repeats).toBe(id);
    // Not a run of this action, not a run this client can see: refused, nothing written.
    const globexRun = (await execute('globex-ci', 'create_repo', { properties: { name: 'g' } })).body.run as { id: string };
    const foreign = await post('/console/api/actions/create_repo/runs', { properties: { name: 'svc-ui' }, repeats: globexRun.id });
    expect([foreign.status, foreign.body.details]).toEqual([422, [{ field: 'repeats', message: 'not a run of this action that you can see' }]]);
  });
});
