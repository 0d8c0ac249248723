import type { App } from '../../src/app';
import { ApiClient, CLIENTS, ClientId, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * Signing out of the console ends the session on every instance sharing
 * the topics, not only on the one that was asked: at once there, within
 * the sign-out consumer's delay elsewhere, and from the start on an
 * instance started later. The client's other sessions go on.
 */
describe('sign-out on every instance', () => {
  let topics: TestTopics;
  const kafka = new TestKafka();
  const apps: App[] = [];
  const servers: ApiClient[] = [];
  const streams = new AbortController();

  async function instance(routing: boolean, env: Record<string, string>): Promise<ApiClient> {
    const app = await startApp(testConfig(topics, env), { routing });
    apps.push(app);
    const api = await ApiClient.start(app);
    servers.push(api);
    return api;
  }

  beforeAll(() => {
    topics = testTopics();
  });
  afterAll(async () => {
    streams.abort();
    for (const s of servers) await s.close();
    for (const a of apps) await a.stop();
    await kafka.close();
  });

  async function signIn(api: ApiClient, client: ClientId): Promise<string> {
    const res = await fetch(`${api.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: api.base, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ clientId: client, clientSecret: CLIENTS[client].secret, next: '/' }).toString(),
    });
    expect(res.status).toBe(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  }
  const runsWith = async (api: ApiClient, cookie: string) => (await fetch(`${api.base}/console/api/runs?limit=1`, { headers: { cookie } })).status;
  const page = async (api: ApiClient, cookie: string) => {
    const res = await fetch(`${api.base}/`, { redirect: 'manual', headers: { cookie } });
    return res.status === 303 ? `303 ${res.headers.get('location')}` : String(res.status);
  };

  test('a session signed out on one instance is refused on each, its open stream ends, and the client’s other session goes on', async () => {
    // The same clients file on each instance: their tokens and sessions are each other's.
    const env = apiEnv();
    const a = await instance(true, env);
    const b = await instance(false, env);
    const ended = await signIn(a, 'acme-ci');
    const other = await signIn(b, 'acme-ci');
    for (const api of [a, b]) for (const cookie of [ended, other]) expect(await runsWith(api, cookie)).toBe(200);

    // A live stream of the session on the other instance.
    const res = await fetch(`${b.base}/console/events`, { headers: { cookie: ended }, signal: streams.signal });
    expect(res.status).toBe(200);
    let closed = false;
    void (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) void chunk;
      } catch {
        /* aborted */
      }
      closed = true;
    })();

    const out = await fetch(`${a.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: ended, origin: a.base, 'sec-fetch-site': 'same-origin' } });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^ar_session=; .*Max-Age=0/);
    // Where it was signed out: at once.
    expect(await runsWith(a, ended)).toBe(401);
    expect(await page(a, ended)).toBe('303 /login?next=%2F');
    // Elsewhere: as soon as the sign-out is read there.
    await eventually(async () => (await runsWith(b, ended)) === 401, 'the other instance refuses the session');
    expect(await page(b, ended)).toBe('303 /login?next=%2F');
    await eventually(() => closed, 'the session’s stream on the other instance ends');
    for (const api of [a, b]) expect(await runsWith(api, other)).toBe(200);

    // An instance started afterwards knows it from its first request.
    const c = await instance(false, env);
    expect(await runsWith(c, ended)).toBe(401);
    expect(await runsWith(c, other)).toBe(200);
  });
});
