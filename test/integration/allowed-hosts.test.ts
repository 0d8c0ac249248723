import { request } from 'node:http';
import type { App } from '../../src/app';
import { ApiClient, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, startApp, testConfig, testTopics } from '../helpers/kafka';

/** One request naming `host` (fetch will not set Host): its status and error code. */
function ask(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; error?: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let error: string | undefined;
        try {
          error = (JSON.parse(text) as { error?: string }).error;
        } catch {
          error = undefined;
        }
        resolve({ status: res.statusCode ?? 0, error });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * CONSOLE_ALLOWED_HOSTS: a DNS-rebinding page reaches the server under its
 * own host name and is refused on every route (sign-in included) but the
 * probes and /metrics; the names listed answer as before.
 */
describe('allowed host names', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  const kafka = new TestKafka();

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp(testConfig(topics, apiEnv({ CONSOLE_ALLOWED_HOSTS: 'Console.Example.test:8443, 127.0.0.1', TRUST_PROXY: 'loopback' })));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
  });

  const routes: [string, string, string?][] = [
    ['GET', '/login'],
    ['POST', '/login', 'clientId=acme-ci&clientSecret=x'],
    ['GET', '/'],
    ['GET', '/console/api/runs'],
    ['GET', '/console/events'],
    ['POST', '/v1/auth/access_token', '{"clientId":"acme-ci","clientSecret":"x"}'],
    ['GET', '/v1/actions/runs'],
  ];
  const typed = (body?: string): Record<string, string> => (body === undefined ? {} : { 'content-type': body.startsWith('{') ? 'application/json' : 'application/x-www-form-urlencoded' });

  test.each(['evil.example', 'evil.example:8443', 'console.example.test:9999', 'console.example.test.evil.example:8443', '127.0.0.2'])('a request naming %s is refused on every route with 421', async (host) => {
    for (const [method, path, body] of routes) {
      const res = await ask(api.base, method, path, { host, ...typed(body) }, body);
      expect([method, path, res.status, res.error]).toEqual([method, path, 421, 'misdirected_request']);
    }
  });

  test('the names listed answer (any case; a name without a port takes any port), and so do probes and /metrics whatever the name', async () => {
    const port = new URL(api.base).port;
    for (const host of ['console.example.test:8443', 'CONSOLE.example.test:8443', `127.0.0.1:${port}`, '127.0.0.1']) {
      expect([host, (await ask(api.base, 'GET', '/login', { host })).status]).toEqual([host, 200]);
      expect([host, (await ask(api.base, 'GET', '/v1/actions/runs', { host })).status]).toEqual([host, 401]);
    }
    for (const path of ['/healthz', '/readyz', '/metrics', '/metrics?x=1']) {
      expect((await ask(api.base, 'GET', path, { host: 'evil.example' })).status).not.toBe(421);
    }
  });

  test('behind a trusted proxy the forwarded host is what counts', async () => {
    const port = new URL(api.base).port;
    const proxied = (forwarded: string) => ask(api.base, 'GET', '/login', { host: `127.0.0.1:${port}`, 'x-forwarded-host': forwarded });
    expect((await proxied('evil.example')).status).toBe(421);
    expect((await proxied('console.example.test:8443')).status).toBe(200);
  });
});
