import { SignJWT } from 'jose';
import type { App } from '../../src/app';
import { samplePortMessage, newRunId } from '../../src/sample';
import { UNKNOWN_RUN_WAIT_MS } from '../../src/api/runs';
import { ApiClient, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * Port's runs API on the real broker: backends report through it the way
 * port-github-action and Port's agent do, and through Kafka, and the
 * store answers what the topic says.
 */
describe('runs API', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  const kafka = new TestKafka();

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp(testConfig(topics, apiEnv({ API_TOKEN_TTL_SECONDS: '2' })));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
  });

  async function trigger(orgId = 'org_acme', extra: { properties?: Record<string, string> } = {}): Promise<string> {
    const runId = newRunId();
    const msg = samplePortMessage({ runId, orgId, invocationMethod: { type: 'KAFKA' }, properties: { version: '1.4.2', ...extra.properties } });
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(msg) }]);
    await eventually(() => app.runs!.store.getRun(runId) !== undefined, `run ${runId} in the store`);
    return runId;
  }

  test('a routed run is in the store with what it is', async () => {
    const runId = await trigger();
    const res = await api.as('acme-ci', 'GET', `/v1/actions/runs/${runId}`);
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(true);
    const run = res.body.run as Record<string, unknown>;
    expect(run).toMatchObject({
      id: runId,
      status: 'IN_PROGRESS',
      action: { identifier: 'deploy_service', title: 'deploy_service', icon: null, deleted: false },
      properties: { version: '1.4.2' },
      source: 'UI',
      requiredApproval: false,
      blueprint: { identifier: 'service', title: 'service' },
      entity: { identifier: 'payments', title: 'Payments' },
      endedAt: null,
      invocationType: 'KAFKA',
    });
    const v1 = await api.as('acme-ci', 'GET', `/v1/actions/runs/${runId}?version=v1&exclude=properties`);
    expect((v1.body.run as Record<string, unknown>).action).toBe('deploy_service');
    expect((v1.body.run as Record<string, unknown>).properties).toBeUndefined();
  });

  test("port-github-action's PATCH_RUN: token, log, PATCH ?runId= with status, link, summary, externalRunId", async () => {
    const runId = await trigger();
    const token = await api.token('acme-ci');
    const log = await api.call('POST', `/v1/actions/runs/${runId}/logs`, { token, body: { message: 'Deploying 1.4.2' } });
    expect(log.status).toBe(201);
    expect(log.body.runLog).toMatchObject({ runId, message: 'Deploying 1.4.2', createdBy: 'acme-ci' });
    expect(String((log.body.runLog as { id: string }).id)).toMatch(/^log_/);
    const patch = await api.call('PATCH', `/v1/actions/runs/${runId}?runId=${runId}`, {
      token: await api.token('acme-ci'),
      raw: `{"status":"SUCCESS","link":["https://github.com/acme/api/actions/runs/1"],"summary":"Deployed","externalRunId":"1"}`,
    });
    expect(patch.status).toBe(200);
    expect(patch.body.run).toMatchObject({
      id: runId,
      status: 'SUCCESS',
      link: ['https://github.com/acme/api/actions/runs/1'],
      summary: 'Deployed',
      externalRunId: '1',
      updatedBy: 'acme-ci',
    });
    expect((patch.body.run as { endedAt: string | null }).endedAt).not.toBeNull();
    // A single link (port-github-action sends a string when it is not JSON).
    const logs = await api.as('acme-ci', 'GET', `/v1/actions/runs/${runId}/logs`);
    // The router's own line first, then the backend's.
    expect((logs.body.runLogs as { message: string; createdBy: string }[]).map((l) => [l.createdBy, l.message])).toEqual([
      ['action-router', expect.stringContaining('Routed to Kafka topic')],
      ['acme-ci', 'Deploying 1.4.2'],
    ]);
    // A finished run is immutable.
    for (const [method, path, body] of [
      ['PATCH', `/v1/actions/runs/${runId}`, { status: 'FAILURE' }],
      ['PATCH', `/v1/actions/runs/${runId}`, { summary: 'changed' }],
      ['POST', `/v1/actions/runs/${runId}/logs`, { message: 'late' }],
      ['PATCH', `/v1/actions/runs/${runId}/response`, { response: { late: true } }],
    ] as const) {
      const res = await api.as('acme-ci', method, path, body);
      expect([method, path, res.status, res.body.ok]).toEqual([method, path, 422, false]);
    }
    expect(app.runs!.store.getRun(runId)!.summary).toBe('Deployed');
  });

  test("Port's agent: a token before each call, the response, then the status", async () => {
    const runId = await trigger();
    const response = await api.as('acme-agent', 'PATCH', `/v1/actions/runs/${runId}/response`, { response: { deployed: '1.4.2', replicas: 3 } });
    expect(response.status).toBe(200);
    const patch = await api.as('acme-agent', 'PATCH', `/v1/actions/runs/${runId}`, { status: 'FAILURE', summary: 'Failed to invoke the webhook with status code: 500. Response: oops' });
    expect(patch.status).toBe(200);
    expect(patch.body.run).toMatchObject({ status: 'FAILURE', response: { deployed: '1.4.2', replicas: 3 }, summary: expect.stringContaining('500') });
  });

  test('a single link as a string; a label without a status keeps the run going', async () => {
    const runId = await trigger();
    const res = await api.as('acme-ci', 'PATCH', `/v1/actions/runs/${runId}`, { statusLabel: 'Building', link: 'https://ci.example/1' });
    expect(res.body.run).toMatchObject({ status: 'IN_PROGRESS', statusLabel: 'Building', link: ['https://ci.example/1'] });
  });

  test('backends report through Kafka and through the API on the same run', async () => {
    const runId = await trigger();
    await api.as('acme-ci', 'POST', `/v1/actions/runs/${runId}/logs`, { message: 'via the API' });
    const update = { runId, orgId: 'org_acme', action: 'deploy_service', status: 'SUCCESS', statusLabel: null, summary: 'via Kafka', links: [], externalRunId: 'k-1', log: 'done via Kafka', invocationType: null, source: 'BACKEND', attempt: 1, at: Date.now() };
    await kafka.produce(topics.status, [{ key: runId, value: JSON.stringify(update) }]);
    await eventually(() => app.runs!.store.getRun(runId)?.status === 'SUCCESS', 'the Kafka SUCCESS applied');
    const run = await api.as('acme-ci', 'GET', `/v1/actions/runs/${runId}`);
    expect(run.body.run).toMatchObject({ status: 'SUCCESS', summary: 'via Kafka', externalRunId: 'k-1' });
    const logs = await api.as('acme-ci', 'GET', `/v1/actions/runs/${runId}/logs`);
    expect((logs.body.runLogs as { message: string }[]).map((l) => l.message).slice(1)).toEqual(['via the API', 'done via Kafka']);
    // Updates after the end are not applied, and counted.
    await kafka.produce(topics.status, [{ key: runId, value: JSON.stringify({ ...update, status: 'FAILURE', summary: 'too late', at: Date.now() }) }]);
    await eventually(async () => (await app.metrics.registry.metrics()).includes('action_router_store_updates_total{result="ignored"}'), 'the late update counted');
    expect(app.runs!.store.getRun(runId)).toMatchObject({ status: 'SUCCESS', summary: 'via Kafka' });
  });

  test('terminationStatus on a log ends the run once, even when two race', async () => {
    const runId = await trigger();
    const [a, b] = await Promise.all([
      api.as('acme-ci', 'POST', `/v1/actions/runs/${runId}/logs`, { message: 'first', terminationStatus: 'SUCCESS' }),
      api.as('acme-agent', 'POST', `/v1/actions/runs/${runId}/logs`, { message: 'second', terminationStatus: 'FAILURE' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([201, 422]);
    const run = app.runs!.store.getRun(runId)!;
    expect(run.status).toBe(a.status === 201 ? 'SUCCESS' : 'FAILURE');
    expect(app.runs!.store.logs(runId, 50, 0).filter((l) => l.createdBy !== 'action-router')).toHaveLength(1);
  });

  test('logs are paged, oldest first', async () => {
    const runId = await trigger();
    const token = await api.token('acme-ci');
    for (let i = 0; i < 55; i++) {
      const res = await api.call('POST', `/v1/actions/runs/${runId}/logs`, { token, body: { message: `line ${i}` } });
      expect(res.status).toBe(201);
    }
    const first = await api.call('GET', `/v1/actions/runs/${runId}/logs`, { token });
    expect((first.body.runLogs as unknown[]).length).toBe(50);
    // 56 logs: the router's, then the 55 lines.
    const rest = await api.call('GET', `/v1/actions/runs/${runId}/logs?limit=10&offset=51`, { token });
    expect((rest.body.runLogs as { message: string }[]).map((l) => l.message)).toEqual(['line 50', 'line 51', 'line 52', 'line 53', 'line 54']);
    expect((await api.call('GET', `/v1/actions/runs/${runId}/logs?limit=51`, { token })).status).toBe(422);
  });

  test('the list filters, newest first; unknown query parameters are ignored', async () => {
    const a = await trigger();
    const b = await trigger();
    await api.as('acme-ci', 'PATCH', `/v1/actions/runs/${a}`, { externalRunId: `ext-${a}`, status: 'SUCCESS' });
    const token = await api.token('acme-ci');
    const list = async (query: string) => ((await api.call('GET', `/v1/actions/runs?${query}`, { token })).body.runs as { id: string }[]).map((r) => r.id);
    expect(await list(`external_run_id=ext-${a}&version=v2&foo=bar`)).toEqual([a]);
    const active = await list('active=true&limit=1000');
    expect(active).toContain(b);
    expect(active).not.toContain(a);
    const all = await list('action=deploy_service&source=UI&source=API&limit=1000');
    expect(all.indexOf(b)).toBeLessThan(all.indexOf(a));
    expect(await list('entity=payments&limit=1')).toHaveLength(1);
    expect((await api.call('GET', '/v1/actions/runs?limit=0', { token })).status).toBe(422);
    expect((await api.call('GET', '/v1/actions/runs?active=maybe', { token })).status).toBe(422);
  });

  test('JSON nested past the depth limit is refused with 422 on every route, before anything walks it', async () => {
    const runId = await trigger();
    const token = await api.token('acme-ci');
    const deepArray = (d: number) => `${'['.repeat(d)}1${']'.repeat(d)}`;
    const deepObject = (d: number) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
    for (const [method, path, raw] of [
      ['PATCH', `/v1/actions/runs/${runId}/response`, `{"response":${deepArray(5_000)}}`],
      ['PATCH', `/v1/actions/runs/${runId}/response`, `{"response":${deepObject(64)}}`],
      ['PATCH', `/v1/actions/runs/${runId}`, `{"summary":"x","extra":${deepObject(100_000)}}`],
      ['POST', `/v1/actions/runs/${runId}/logs`, `{"message":${deepArray(65)}}`],
      ['POST', '/v1/auth/access_token', `{"clientId":${deepArray(10_000)}}`],
    ] as const) {
      const res = await api.call(method, path, { token, raw });
      expect([path, res.status, res.body.error]).toEqual([path, 422, 'json_too_deep']);
      expect(res.body.message).toContain('nested deeper than 64 levels');
    }
    // Within the limit it is the run's response.
    const ok = await api.call('PATCH', `/v1/actions/runs/${runId}/response`, { token, raw: `{"response":${deepObject(60)}}` });
    expect(ok.status).toBe(200);
    let depth = 0;
    for (let v = (ok.body.run as { response: unknown }).response; typeof v === 'object' && v !== null; v = (v as { a: unknown }).a) depth++;
    expect(depth).toBe(60);
  });

  test('another org sees nothing: 404 on every route, absent from lists; an operator sees all', async () => {
    const runId = await trigger('org_acme');
    for (const [method, path, body] of [
      ['GET', `/v1/actions/runs/${runId}`, undefined],
      ['GET', `/v1/actions/runs/${runId}/logs`, undefined],
      ['PATCH', `/v1/actions/runs/${runId}`, { status: 'FAILURE' }],
      ['POST', `/v1/actions/runs/${runId}/logs`, { message: 'x', terminationStatus: 'FAILURE' }],
      ['PATCH', `/v1/actions/runs/${runId}/response`, { response: 'x' }],
    ] as const) {
      // A fresh token each time: tokens here last 2 s, and writes to a hidden run wait UNKNOWN_RUN_WAIT_MS.
      const res = await api.as('globex-ci', method, path, body);
      expect([path, res.status, res.body.error]).toEqual([path, 404, 'not_found']);
    }
    const list = await api.as('globex-ci', 'GET', '/v1/actions/runs?limit=1000');
    expect((list.body.runs as { id: string }[]).map((r) => r.id)).not.toContain(runId);
    expect(app.runs!.store.getRun(runId)!.status).toBe('IN_PROGRESS');
    // A write to another org's run and to an unknown run answer alike, after the same wait for a run not known yet.
    const timed = async (path: string) => {
      const token = await api.token('globex-ci');
      const t0 = Date.now();
      const res = await api.call('PATCH', path, { token, body: { status: 'FAILURE' } });
      return { status: res.status, error: res.body.error, ms: Date.now() - t0 };
    };
    const [hidden, unknown] = await Promise.all([timed(`/v1/actions/runs/${runId}`), timed('/v1/actions/runs/r_never_triggered')]);
    expect([hidden.status, hidden.error, unknown.status, unknown.error]).toEqual([404, 'not_found', 404, 'not_found']);
    expect(hidden.ms).toBeGreaterThanOrEqual(UNKNOWN_RUN_WAIT_MS - 50);
    expect(unknown.ms).toBeGreaterThanOrEqual(UNKNOWN_RUN_WAIT_MS - 50);
    expect(Math.abs(hidden.ms - unknown.ms)).toBeLessThan(1_000);
    const op = await api.as('operator', 'GET', `/v1/actions/runs/${runId}`);
    expect(op.status).toBe(200);
    const opList = await api.as('operator', 'GET', '/v1/actions/runs?org=org_acme&limit=1000');
    expect((opList.body.runs as { id: string }[]).map((r) => r.id)).toContain(runId);
  });

  test('tokens: bad credentials, forged, expired, none; each is 401 and changes nothing', async () => {
    const runId = await trigger();
    const bad = await api.call('POST', '/v1/auth/access_token', { body: { clientId: 'acme-ci', clientSecret: 'wrong' } });
    expect([bad.status, bad.body.ok, bad.body.error]).toEqual([401, false, 'unauthorized']);
    const unknown = await api.call('POST', '/v1/auth/access_token', { body: { clientId: 'nobody', clientSecret: 'x' } });
    expect(unknown.status).toBe(401);
    const ok = await api.call('POST', '/v1/auth/access_token', { body: { clientId: 'acme-ci', clientSecret: 'acme-secret-0123456789abcdef' } });
    expect(ok.body).toMatchObject({ ok: true, expiresIn: 2, tokenType: 'Bearer' });
    const forged = await new SignJWT({ org: 'org_acme', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('acme-ci')
      .setIssuer('action-router')
      .setAudience('action-router-api')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('a key that is not the server key, at least 32 chars'));
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'acme-ci', org: 'org_acme' })).toString('base64url')}.`;
    for (const token of [forged, unsigned, 'garbage', '']) {
      const res = await api.call('PATCH', `/v1/actions/runs/${runId}`, { token, body: { status: 'FAILURE' } });
      expect(res.status).toBe(401);
    }
    expect((await api.call('GET', `/v1/actions/runs/${runId}`)).status).toBe(401);
    const expiring = ok.body.accessToken as string;
    // Issued for 2 s (API_TOKEN_TTL_SECONDS): refused once that has passed.
    let expired = await api.call('GET', `/v1/actions/runs/${runId}`, { token: expiring });
    await eventually(async () => (expired = await api.call('GET', `/v1/actions/runs/${runId}`, { token: expiring })).status !== 200, 'the token expired', 10_000);
    expect([expired.status, expired.body.error]).toEqual([401, 'unauthorized']);
    expect(app.runs!.store.getRun(runId)!.status).toBe('IN_PROGRESS');
  });

  test('bad requests get the envelope and the right code, and change nothing', async () => {
    const runId = await trigger();
    const token = await api.token('acme-ci');
    const cases: [string, string, { body?: unknown; raw?: string | Buffer; contentType?: string }, number, string][] = [
      ['PATCH', `/v1/actions/runs/${runId}`, { body: { status: 'IN_PROGRESS' } }, 422, 'invalid_request'],
      ['PATCH', `/v1/actions/runs/${runId}`, { body: { status: 'DONE' } }, 422, 'invalid_request'],
      ['PATCH', `/v1/actions/runs/${runId}`, { body: { summary: 42 } }, 422, 'invalid_request'],
      ['PATCH', `/v1/actions/runs/${runId}`, { body: { sumary: 'typo' } }, 422, 'invalid_request'],
      ['PATCH', `/v1/actions/runs/${runId}`, { body: { link: [1, 2] } }, 422, 'invalid_request'],
      ['PATCH', `/v1/actions/runs/${runId}`, { body: ['SUCCESS'] }, 422, 'invalid_request'],
      ['POST', `/v1/actions/runs/${runId}/logs`, { body: {} }, 422, 'invalid_request'],
      ['POST', `/v1/actions/runs/${runId}/logs`, { body: { message: 'x', terminationStatus: 'IN_PROGRESS' } }, 422, 'invalid_request'],
      ['PATCH', `/v1/actions/runs/${runId}`, { raw: '{"status": "SUCC' }, 400, 'invalid_json'],
      ['PATCH', `/v1/actions/runs/${runId}`, { raw: 'status=SUCCESS', contentType: 'application/x-www-form-urlencoded' }, 415, 'unsupported_media_type'],
      ['PATCH', `/v1/actions/runs/${runId}`, { raw: '{"status":"SUCCESS"}', contentType: 'text/plain' }, 415, 'unsupported_media_type'],
      ['POST', `/v1/actions/runs/${runId}/logs`, { raw: '{"message":"x"}', contentType: 'text/plain; charset=utf-8' }, 415, 'unsupported_media_type'],
      ['POST', '/v1/auth/access_token', { raw: '{"clientId":"acme-ci","clientSecret":"x"}', contentType: 'text/plain' }, 415, 'unsupported_media_type'],
      ['PATCH', `/v1/actions/runs/${runId}`, { raw: JSON.stringify({ summary: 'x'.repeat(2 * 1024 * 1024) }) }, 413, 'payload_too_large'],
      ['PATCH', `/v1/actions/runs/..%2F..%2Fetc%2Fpasswd`, { body: { status: 'SUCCESS' } }, 404, 'not_found'],
      ['GET', `/v1/actions/runs/${'r'.repeat(300)}`, {}, 404, 'not_found'],
      ['GET', `/v1/actions/runs/r_1%00`, {}, 404, 'not_found'],
      ['PATCH', `/v1/actions/runs/r_doesnotexist`, { body: { status: 'SUCCESS' } }, 404, 'not_found'],
    ];
    for (const [method, path, o, status, code] of cases) {
      const res = await api.call(method, path, { token, ...o });
      expect([method, path.slice(0, 60), JSON.stringify(o).slice(0, 80), res.status, res.body.ok, res.body.error]).toEqual([
        method,
        path.slice(0, 60),
        JSON.stringify(o).slice(0, 80),
        status,
        false,
        code,
      ]);
    }
    expect(app.runs!.store.getRun(runId)).toMatchObject({ status: 'IN_PROGRESS', summary: null });
    expect(app.runs!.store.logs(runId, 50, 0).filter((l) => l.createdBy !== 'action-router')).toHaveLength(0);
    // The router still answers.
    expect((await api.call('GET', '/healthz')).status).toBe(200);
  });

  test('a second instance rebuilt from the topic on an empty disk answers the same', async () => {
    const runId = await trigger();
    await api.as('acme-ci', 'POST', `/v1/actions/runs/${runId}/logs`, { message: 'before the rebuild' });
    await api.as('acme-ci', 'PATCH', `/v1/actions/runs/${runId}`, { status: 'SUCCESS', link: ['https://x.example/1'] });
    // An API-only instance (as `action-router api`): a second router in its own group would route every run again.
    const second = await startApp(testConfig({ ...topics, group: `${topics.group}-second` }, apiEnv()), { routing: false });
    const api2 = await ApiClient.start(second);
    try {
      await second.runs!.writer.whenCaughtUp();
      const one = await api.as('operator', 'GET', '/v1/actions/runs?limit=1000');
      const two = await api2.as('operator', 'GET', '/v1/actions/runs?limit=1000');
      expect(two.body.runs).toEqual(one.body.runs);
      const logs1 = await api.as('operator', 'GET', `/v1/actions/runs/${runId}/logs`);
      const logs2 = await api2.as('operator', 'GET', `/v1/actions/runs/${runId}/logs`);
      expect(logs2.body).toEqual(logs1.body);
      expect(second.runs!.store.rebuilt).toBe(true);
    } finally {
      await api2.close();
      await second.stop();
    }
  });

  test('guessing is refused past the budget, the right secret is not; without TRUST_PROXY X-Forwarded-For is not believed', async () => {
    // Earlier tests failed a few sign-ins from this address already.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const headers = { 'x-forwarded-for': `203.0.113.${i + 1}` };
      statuses.push((await api.call('POST', '/v1/auth/access_token', { body: { clientId: 'acme-ci', clientSecret: `guess-${i}` }, headers })).status);
    }
    const firstRefusal = statuses.indexOf(429);
    expect(firstRefusal).toBeGreaterThan(0);
    expect(statuses.slice(0, firstRefusal).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(firstRefusal).every((s) => s === 429)).toBe(true);
    const right = await api.call('POST', '/v1/auth/access_token', { body: { clientId: 'acme-ci', clientSecret: 'acme-secret-0123456789abcdef' } });
    expect(right.status).toBe(200);
  });
});
