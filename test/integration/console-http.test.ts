import { runsCli } from '../helpers/processes';
import { writeFileSync } from 'node:fs';
import type { App } from '../../src/app';
import { newRunId, samplePortMessage } from '../../src/sample';
import { ApiClient, CLIENTS, ClientId, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * The console's server side on the real broker: sign-in, sessions, CSRF,
 * org isolation of every JSON route and of the live feed, the dead-letter
 * view, and the CLI over the same API. The pages themselves are tested in
 * a browser (console-browser.test.ts).
 */
describe('runs console (HTTP)', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  let clientsFile: string;
  const kafka = new TestKafka();

  beforeAll(async () => {
    topics = testTopics();
    const env = apiEnv({ API_TOKEN_SECRET: 'console-test-secret-0123456789abcdef' });
    clientsFile = env.API_CLIENTS_FILE!;
    app = await startApp(testConfig(topics, env));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
  });

  async function trigger(orgId: string, entity = 'payments'): Promise<string> {
    const runId = newRunId();
    const msg = samplePortMessage({ runId, orgId, invocationMethod: { type: 'KAFKA' } });
    (msg.context as { entity: string }).entity = entity;
    (msg.payload as { entity: { identifier: string } }).entity.identifier = entity;
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(msg) }]);
    await eventually(() => app.runs!.store.getRun(runId) !== undefined, `run ${runId} in the store`);
    return runId;
  }

  /** Signs in through the form as a browser does; returns the session cookie. */
  async function signIn(client: ClientId, headers: Record<string, string> = {}): Promise<string> {
    const res = await fetch(`${api.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: api.base, 'sec-fetch-site': 'same-origin', ...headers },
      body: new URLSearchParams({ clientId: client, clientSecret: CLIENTS[client].secret, next: '/dead-letters' }).toString(),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dead-letters');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^ar_session=[^;]+; Max-Age=28800; Path=\/; HttpOnly; SameSite=Strict$/);
    return cookie.split(';')[0]!;
  }

  async function get(path: string, cookie?: string, headers: Record<string, string> = {}) {
    const res = await fetch(api.base + path, { redirect: 'manual', headers: { ...(cookie ? { cookie } : {}), ...headers } });
    const text = await res.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: res.status, headers: res.headers, body };
  }

  test('every page and JSON route needs a sign-in; pages redirect, JSON answers 401', async () => {
    for (const path of ['/', '/dead-letters', '/runs/r_whatever123']) {
      const res = await get(path);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(`/login?next=${encodeURIComponent(path)}`);
    }
    for (const path of ['/console/api/runs', '/console/api/runs/r_whatever123', '/console/api/dead-letters', '/console/api/overview', '/console/events', '/console/api/me']) {
      const res = await get(path);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ ok: false, error: 'unauthorized' });
    }
    const login = await get('/login');
    expect(login.status).toBe(200);
    expect(String(login.body.text)).toContain('<form method="post" action="/login">');
    expect(login.headers.get('content-security-policy')).toBe(
      "default-src 'none';script-src 'self';style-src 'self';img-src 'self' data:;connect-src 'self';form-action 'self';frame-ancestors 'none';base-uri 'none'",
    );
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    expect(login.headers.get('referrer-policy')).toBe('same-origin');
    expect(login.headers.get('x-content-type-options')).toBe('nosniff');
    const script = await get('/assets/console.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  test('a wrong secret is refused with the form again; a cross-site sign-in or sign-out is refused', async () => {
    const bad = await fetch(`${api.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'clientId=acme-ci&clientSecret=wrong&next=%2F',
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect(await bad.text()).toContain('Those credentials were not accepted.');
    // Another host, another scheme on this host (an http page is not the https console), another port, no origin at all, garbage.
    const here = new URL(api.base);
    const crossSite: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: `https://${here.host}` },
      { origin: `http://${here.hostname}:${Number(here.port) + 1}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'null' },
      { origin: 'not a url' },
    ];
    for (const headers of crossSite) {
      const res = await fetch(`${api.base}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ clientId: 'acme-ci', clientSecret: CLIENTS['acme-ci'].secret }).toString(),
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
    const cookie = await signIn('acme-ci');
    const logout = await fetch(`${api.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: 'https://evil.example' } });
    expect(logout.status).toBe(403);
    const out = await fetch(`${api.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: api.base } });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^ar_session=; .*Max-Age=0/);
  });

  test('sign-in goes back only to a path of this site', async () => {
    for (const next of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
      const res = await fetch(`${api.base}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ clientId: 'acme-ci', clientSecret: CLIENTS['acme-ci'].secret, next }).toString(),
      });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/');
    }
  });

  test('sign-in with any text as `next` signs in and goes to `/` or the encoded path', async () => {
    const cases: [string, string][] = [
      ['/\u2603', '/%E2%98%83'],
      ['/%E2%98%83', '/%E2%98%83'],
      ['/runs?q=caf\u00e9#top', '/runs?q=caf%C3%A9#top'],
      ['/a b', '/a%20b'],
      ['/\t/evil.example', '/'],
      ['/\n/evil.example', '/'],
      ['/a\u0007b', '/'],
      ['/\u0000', '/'],
      ['/\ud800', '/%EF%BF%BD'],
    ];
    for (const [next, location] of cases) {
      const res = await fetch(`${api.base}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ clientId: 'acme-ci', clientSecret: CLIENTS['acme-ci'].secret, next }).toString(),
      });
      expect({ next, status: res.status, location: res.headers.get('location') }).toEqual({ next, status: 303, location });
      expect(res.headers.get('set-cookie')).toMatch(/^ar_session=[^;]+/);
    }
    // The sign-in page itself takes such a `next` too.
    const page = await fetch(`${api.base}/login?next=${encodeURIComponent('/\u2603')}`);
    expect(page.status).toBe(200);
  });

  test('a session is not a Bearer token, and a Bearer token is not a session', async () => {
    const cookie = await signIn('acme-ci');
    const session = cookie.slice('ar_session='.length);
    const asBearer = await api.call('GET', '/v1/actions/runs', { token: session });
    expect(asBearer.status).toBe(401);
    const token = await api.token('acme-ci');
    const asCookie = await get('/', `ar_session=${token}`);
    expect(asCookie.status).toBe(303);
    // The console's JSON and feed take a Bearer token (the CLI uses them).
    expect((await get('/console/api/me', undefined, { authorization: `Bearer ${token}` })).body).toMatchObject({ clientId: 'acme-ci', orgId: 'org_acme' });
  });

  test("an org's client sees its org's runs only, on every route; the operator sees all", async () => {
    const mine = await trigger('org_acme', `ent-${newRunId()}`);
    const theirs = await trigger('org_globex', `ent-${newRunId()}`);
    const acme = await signIn('acme-ci');
    const list = await get('/console/api/runs?limit=200', acme);
    const ids = (list.body.runs as { id: string; orgId: string }[]).map((r) => r.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(theirs);
    expect((list.body.runs as { orgId: string }[]).every((r) => r.orgId === 'org_acme')).toBe(true);
    // An org filter from an org's client is ignored, not obeyed.
    const sneaky = await get('/console/api/runs?org=org_globex&limit=200', acme);
    expect((sneaky.body.runs as { id: string }[]).map((r) => r.id)).not.toContain(theirs);
    expect((await get(`/console/api/runs/${theirs}`, acme)).status).toBe(404);
    expect((await get(`/console/api/runs/${theirs}/changes`, acme)).status).toBe(404);
    const detail = await get(`/console/api/runs/${mine}`, acme);
    expect(detail.status).toBe(200);
    expect(detail.body.run).toMatchObject({ id: mine, orgId: 'org_acme', invocationType: 'KAFKA', properties: { version: '1.4.2' } });
    expect((detail.body.updates as { who: string; status: string }[])[0]).toMatchObject({ who: 'router', status: 'IN_PROGRESS' });
    expect((detail.body.logs as { message: string }[])[0]!.message).toMatch(/^Routed to Kafka topic /);

    const ops = await signIn('operator');
    const all = await get('/console/api/runs?limit=200', ops);
    const allIds = (all.body.runs as { id: string }[]).map((r) => r.id);
    expect(allIds).toEqual(expect.arrayContaining([mine, theirs]));
    const onlyGlobex = await get('/console/api/runs?org=org_globex&limit=200', ops);
    expect((onlyGlobex.body.runs as { orgId: string }[]).every((r) => r.orgId === 'org_globex')).toBe(true);
    expect(onlyGlobex.body.total).toBe((onlyGlobex.body.runs as unknown[]).length);
  });

  test('filters: status, action, invocation type, active, free text; total counts the match', async () => {
    const entity = `filter-${newRunId()}`;
    const a = await trigger('org_acme', entity);
    const b = await trigger('org_acme', entity);
    const token = await api.token('acme-ci');
    expect((await api.call('PATCH', `/v1/actions/runs/${b}`, { token, body: { status: 'SUCCESS' } })).status).toBe(200);
    const cookie = await signIn('acme-ci');
    const q = (query: string) => get(`/console/api/runs?q=${entity}&${query}`, cookie);
    expect(((await q('')).body.runs as { id: string }[]).map((r) => r.id)).toEqual([b, a]);
    expect((await q('')).body.total).toBe(2);
    expect(((await q('status=SUCCESS')).body.runs as { id: string }[]).map((r) => r.id)).toEqual([b]);
    expect(((await q('active=true')).body.runs as { id: string }[]).map((r) => r.id)).toEqual([a]);
    expect(((await q('type=GITHUB')).body.runs as unknown[]).length).toBe(0);
    expect(((await q('action=deploy_service')).body.runs as unknown[]).length).toBe(2);
    expect(((await q('limit=1&offset=1')).body.runs as { id: string }[]).map((r) => r.id)).toEqual([a]);
    const bad = await get('/console/api/runs?status=MAYBE', cookie);
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ ok: false, error: 'invalid_request' });
  });

  test('dead letters: poison is kept with its reason and bytes; an org sees its own, the operator all', async () => {
    const poison = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x00, 0x01]);
    const known = newRunId();
    const badKnown = { ...samplePortMessage({ runId: known, orgId: 'org_acme' }), payload: { properties: {} } };
    await kafka.produce(topics.trigger, [{ key: 'poison-key', value: poison }, { key: known, value: JSON.stringify(badKnown) }]);
    const ops = await signIn('operator');
    let letters: Record<string, unknown>[] = [];
    await eventually(async () => {
      letters = (await get('/console/api/dead-letters', ops)).body.letters as Record<string, unknown>[];
      // The letter and the run's FAILURE come from two topics, applied independently: wait for both.
      return letters.length >= 2 && letters.some((l) => l.runId === known && l.runKnown === true);
    }, 'both dead letters in the store, and the known run');
    const raw = letters.find((l) => l.orgId === null)!;
    expect(raw).toMatchObject({ reason: 'DECODE_FAILED', sourceTopic: topics.trigger, size: 6, trimmed: false });
    const mine = letters.find((l) => l.runId === known)!;
    expect(mine).toMatchObject({ orgId: 'org_acme', runKnown: true });
    const detail = await get(`/console/api/dead-letters/${raw.seq as number}`, ops);
    expect(detail.body.letter).toMatchObject({ key: 'poison-key', text: null });
    expect((detail.body.letter as { hex: string }).hex).toBe('00000000  7b 22 ff fe 00 01                                {"....');
    expect((detail.body.letter as { headers: Record<string, string> }).headers['x-dlq-reason']).toBe('DECODE_FAILED');
    const reasons = (await get('/console/api/dead-letters', ops)).body.reasons as { reason: string; count: number }[];
    expect(reasons.reduce((n, r) => n + r.count, 0)).toBe(letters.length);

    const acme = await signIn('acme-ci');
    const acmeLetters = (await get('/console/api/dead-letters', acme)).body.letters as { runId: string | null; orgId: string }[];
    expect(acmeLetters.map((l) => l.runId)).toEqual([known]);
    expect((await get(`/console/api/dead-letters/${raw.seq as number}`, acme)).status).toBe(404);
    const globex = await signIn('globex-ci');
    expect((await get('/console/api/dead-letters', globex)).body.letters).toEqual([]);
  });

  test('dead letters: the store and the console mask what a run page masks; the topic keeps the original bytes', async () => {
    const SECRETS: [string, string, string, string, string] = ['hunter2-password-value', 'tok-3f9a-api-token', 'Bearer sekret-header-value', 'x-api-key-value-77', 'body-secret-value'];
    const port = newRunId();
    // Port's message, with censored inputs, custom headers and a body, made invalid (no trigger.at): SCHEMA_INVALID.
    const portMessage = samplePortMessage({
      runId: port,
      orgId: 'org_acme',
      invocationMethod: { type: 'WEBHOOK', url: 'https://hooks.example/run', headers: { Authorization: SECRETS[2], 'X-Api-Key': SECRETS[3] }, body: { token: SECRETS[4] } },
    });
    const payload = portMessage.payload as Record<string, unknown>;
    payload.properties = { password: SECRETS[0], apiToken: SECRETS[1], region: 'eu-west-1' };
    payload.censoredProperties = ['password', 'apiToken'];
    delete (portMessage.trigger as Record<string, unknown>).at;
    // The router's own form, free-form fields as JSON text, invalid too (no triggeredAt).
    const own = newRunId();
    const ownForm = {
      runId: own,
      orgId: 'org_acme',
      action: 'deploy',
      invocationMethod: { type: 'WEBHOOK', agent: false, settings: JSON.stringify({ url: 'https://hooks.example/x', headers: { Authorization: SECRETS[2] } }) },
      properties: JSON.stringify({ password: SECRETS[0], size: 3 }),
      censoredProperties: ['password'],
    };
    // JSON the store cannot read, naming censored inputs: withheld.
    const broken = `{"context":{"runId":"${newRunId()}"},"payload":{"censoredProperties":["password"],"properties":{"password":"${SECRETS[0]}"`;
    await kafka.produce(topics.trigger, [
      { key: port, value: JSON.stringify(portMessage), headers: { authorization: SECRETS[2], 'x-trace-id': 'trace-1' } },
      { key: own, value: JSON.stringify(ownForm) },
      { key: 'broken', value: broken },
    ]);
    const ops = await signIn('operator');
    let letters: Record<string, unknown>[] = [];
    await eventually(async () => {
      letters = (await get('/console/api/dead-letters?limit=200', ops)).body.letters as Record<string, unknown>[];
      return [port, own].every((id) => letters.some((l) => l.runId === id)) && letters.some((l) => l.reason === 'DECODE_FAILED' && l.size === broken.length);
    }, 'the three letters in the store');
    const detail = async (l: Record<string, unknown>) => (await get(`/console/api/dead-letters/${l.seq as number}`, ops)).body.letter as { copy: string; text: string; headers: Record<string, string> };

    const portLetter = await detail(letters.find((l) => l.runId === port)!);
    expect(portLetter.copy).toBe('masked');
    const shown = JSON.parse(portLetter.text as string);
    expect(shown.payload.properties).toEqual({ password: '********', apiToken: '********', region: 'eu-west-1' });
    expect(shown.payload.action.invocationMethod).toMatchObject({ url: 'https://hooks.example/run', headers: { Authorization: '[redacted]', 'X-Api-Key': '[redacted]' }, body: '[redacted]' });
    expect(portLetter.headers).toMatchObject({ authorization: '[redacted]', 'x-trace-id': 'trace-1', 'x-dlq-reason': 'SCHEMA_INVALID' });
    const ownLetter = await detail(letters.find((l) => l.runId === own)!);
    expect(ownLetter.copy).toBe('masked');
    const ownShown = JSON.parse(ownLetter.text as string);
    expect(JSON.parse(ownShown.properties as string)).toEqual({ password: '********', size: 3 });
    expect(JSON.parse(ownShown.invocationMethod.settings as string)).toEqual({ url: 'https://hooks.example/x', headers: { Authorization: '[redacted]' } });
    const brokenLetter = await detail(letters.find((l) => l.size === broken.length && l.reason === 'DECODE_FAILED')!);
    expect(brokenLetter).toMatchObject({ copy: 'withheld', text: '', keptBytes: 0 });
    // Whatever the console serves of them (the list, each letter, the org's own view), no secret is in it.
    const acme = await signIn('acme-ci');
    const served = JSON.stringify([letters, portLetter, ownLetter, brokenLetter, (await get('/console/api/dead-letters?limit=200', acme)).body]);
    for (const secret of SECRETS) expect(served).not.toContain(secret);
    const page = await get('/dead-letters', ops);
    for (const secret of SECRETS) expect(String(page.body.text)).not.toContain(secret);

    // The operators' copy on the topic is the event as it came, byte for byte.
    const dlq = await kafka.collect(topics.dlq, (ms) => [port, own, 'broken'].every((k) => ms.some((m) => m.key?.toString() === k)));
    const original = (k: string) => dlq.find((m) => m.key?.toString() === k)!;
    expect(original(port).value!.toString()).toBe(JSON.stringify(portMessage));
    expect(original(port).headers!.authorization!.toString()).toBe(SECRETS[2]);
    expect(original(own).value!.toString()).toBe(JSON.stringify(ownForm));
    expect(original('broken').value!.toString()).toBe(broken);
  });

  test('the live feed sends each client the changes of its own org only', async () => {
    const acme = await signIn('acme-ci');
    const globex = await signIn('globex-ci');
    const read = (cookie: string) => {
      const abort = new AbortController();
      const seen: string[] = [];
      const done = (async () => {
        const res = await fetch(`${api.base}/console/events`, { headers: { cookie }, signal: abort.signal });
        expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
        const decoder = new TextDecoder();
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) seen.push(decoder.decode(chunk));
        } catch {
          // aborted
        }
      })();
      return { seen, stop: async () => (abort.abort(), done) };
    };
    const a = read(acme);
    const g = read(globex);
    await eventually(() => a.seen.join('').includes('event: hello') && g.seen.join('').includes('event: hello'), 'both streams open');
    const acmeRun = await trigger('org_acme');
    const globexRun = await trigger('org_globex');
    await eventually(() => a.seen.join('').includes(acmeRun) && g.seen.join('').includes(globexRun), 'each stream has its run');
    // A later run of each org: once each stream has it, anything of the other org's run would have come before it.
    const acmeMark = await trigger('org_acme');
    const globexMark = await trigger('org_globex');
    await eventually(() => a.seen.join('').includes(acmeMark) && g.seen.join('').includes(globexMark), 'each stream has its later run');
    await a.stop();
    await g.stop();
    expect(a.seen.join('')).not.toContain(globexRun);
    expect(g.seen.join('')).not.toContain(acmeRun);
    expect(a.seen.join('')).toMatch(new RegExp(`event: runs\\ndata: \\[.*"id":"${acmeRun}".*"status":"IN_PROGRESS"`));
  });

  test('one client cannot hold every live stream: the 21st of one client gets 503', async () => {
    const cookie = await signIn('globex-ci');
    const abort = new AbortController();
    try {
      const open = await Promise.all(Array.from({ length: 20 }, () => fetch(`${api.base}/console/events`, { headers: { cookie }, signal: abort.signal })));
      expect(open.map((r) => r.status)).toEqual(new Array(20).fill(200));
      const refused = await get('/console/events', cookie);
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ ok: false, error: 'unavailable' });
      // Another client still gets one.
      const other = await fetch(`${api.base}/console/events`, { headers: { cookie: await signIn('acme-ci') }, signal: abort.signal });
      expect(other.status).toBe(200);
    } finally {
      abort.abort();
    }
  });

  test('the overview counts the org\'s runs of the last minutes', async () => {
    const acme = await signIn('globex-ci');
    const before = (await get('/console/api/overview', acme)).body as { perMinute: number[]; inFlight: number };
    await trigger('org_globex');
    const after = (await get('/console/api/overview', acme)).body as { perMinute: number[]; inFlight: number; lag: unknown };
    expect(after.perMinute.reduce((a, b) => a + b, 0)).toBe(before.perMinute.reduce((a, b) => a + b, 0) + 1);
    expect(after.inFlight).toBe(before.inFlight + 1);
    expect(after.lag).toEqual({ router: expect.any(Number), store: expect.any(Number) });
  });

  test('a client removed from the clients file loses its session at once', async () => {
    const cookie = await signIn('globex-ci');
    expect((await get('/console/api/me', cookie)).status).toBe(200);
    const rest: Record<string, unknown> = { ...CLIENTS };
    delete rest['globex-ci'];
    writeFileSync(clientsFile, JSON.stringify(rest));
    // The file is read at start: a new instance (same secret) refuses the old session.
    const config = testConfig(topics, { API_CLIENTS_FILE: clientsFile, API_TOKEN_SECRET: 'console-test-secret-0123456789abcdef', ROUTER_GROUP_ID: `${topics.group}-2` });
    const second = await startApp(config, { routing: false });
    const secondApi = await ApiClient.start(second);
    try {
      const res = await fetch(`${secondApi.base}/console/api/me`, { headers: { cookie } });
      expect(res.status).toBe(401);
    } finally {
      writeFileSync(clientsFile, JSON.stringify(CLIENTS));
      await secondApi.close();
      await second.stop();
    }
  });

  test('CLI: runs list, show and logs over the API, with --json', async () => {
    const runId = await trigger('org_acme', `cli-${newRunId()}`);
    const cli = (...args: string[]) => runsCli(api.base, 'acme-ci', CLIENTS['acme-ci'].secret, ...args);
    const list = await cli('list', '--json', '--limit', '200');
    expect(list.code).toBe(0);
    const runs = JSON.parse(list.out) as { id: string; orgId: string }[];
    expect(runs.map((r) => r.id)).toContain(runId);
    expect(runs.every((r) => r.orgId === 'org_acme')).toBe(true);
    const show = await cli('show', runId);
    expect(show.out).toMatch(new RegExp(`^run +${runId}\\nstatus +IN_PROGRESS\\n`));
    const logs = await cli('logs', runId, '--json');
    expect(JSON.parse(logs.out.split('\n')[0]!)).toMatchObject({ runId, createdBy: 'action-router' });
    const missing = await cli('show', 'r_doesnotexist');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('not found');
  });
});
