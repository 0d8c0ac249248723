import type { App } from '../../src/app';
import { ApiClient, CLIENTS, ClientId, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * Guessing client secrets behind a proxy (TRUST_PROXY=loopback: this test
 * is the proxy, X-Forwarded-For names the client): the right secret always
 * works, on the token route and the console, while guessing waits and is
 * refused past the budgets. Each test guesses from addresses of its own.
 */
describe('sign-in under guessing', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  const kafka = new TestKafka();

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp(testConfig(topics, apiEnv({ TRUST_PROXY: 'loopback' })));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
  });

  const token = (client: string, address: string, secret = 'a wrong guess') =>
    api.call('POST', '/v1/auth/access_token', { body: { clientId: client, clientSecret: secret }, headers: { 'x-forwarded-for': address } });
  const right = (client: ClientId, address: string) => token(client, address, CLIENTS[client].secret);
  const console = async (client: string, secret: string, address: string) =>
    fetch(`${api.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: api.base, 'sec-fetch-site': 'same-origin', 'x-forwarded-for': address },
      body: new URLSearchParams({ clientId: client, clientSecret: secret, next: '/' }).toString(),
    });
  const statuses = async (n: number, guess: (i: number) => Promise<{ status: number }>) => (await Promise.all(Array.from({ length: n }, (_, i) => guess(i)))).map((r) => r.status);
  const count = (list: number[], status: number) => list.filter((s) => s === status).length;

  test('past the budget of an address and client, wrong guesses get 429 and the right secret still works there', async () => {
    const address = '203.0.113.10';
    const wrong = await statuses(12, () => token('acme-ci', address));
    expect(count(wrong, 401)).toBe(10);
    expect(count(wrong, 429)).toBe(2);
    const refused = await token('acme-ci', address);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);

    expect((await right('acme-ci', address)).status).toBe(200);
    const signIn = await console('acme-ci', CLIENTS['acme-ci'].secret, address);
    expect(signIn.status).toBe(303);
    expect(signIn.headers.get('set-cookie')).toMatch(/^ar_session=/);
    // The console's wrong guesses count against the same budget.
    expect((await console('acme-ci', 'a wrong guess', address)).status).toBe(429);
    // Another client from that address, and that client from another address behind the same proxy, have budgets of their own.
    expect((await token('operator', address)).status).toBe(401);
    expect((await token('acme-ci', '203.0.113.11')).status).toBe(401);
  });

  test('a steady stream of wrong guesses from the same address never turns the right secret away', async () => {
    const address = '203.0.113.20';
    const guessed: number[] = [];
    let stop = false;
    const guesser = async () => {
      while (!stop) guessed.push((await token('acme-agent', address)).status);
    };
    const guessers = [guesser(), guesser(), guesser()];
    const answers: number[] = [];
    try {
      // Until the guessers have spent the budget, and then some more.
      while (count(guessed, 429) < 3) {
        answers.push((await right('acme-agent', address)).status, (await console('acme-agent', CLIENTS['acme-agent'].secret, address)).status);
      }
      for (let i = 0; i < 5; i++) answers.push((await right('acme-agent', address)).status);
    } finally {
      stop = true;
      await Promise.all(guessers);
    }
    expect(answers.length).toBeGreaterThan(5);
    expect(answers.every((s) => s === 200 || s === 303)).toBe(true);
    expect(count(guessed, 401)).toBe(10);
  });

  test('every failure waits before its answer, past a budget longer', async () => {
    const address = '203.0.113.30';
    const timed = async () => {
      const started = Date.now();
      const res = await token('no-such-client', address);
      return { status: res.status, ms: Date.now() - started };
    };
    const first = await timed();
    expect(first.status).toBe(401);
    expect(first.ms).toBeGreaterThanOrEqual(190);
    await statuses(9, () => token('no-such-client', address));
    const limited = await timed();
    expect(limited.status).toBe(429);
    expect(limited.ms).toBeGreaterThanOrEqual(2_900);
  });

  test('failures for one client from many addresses meet its cap; its right secret still works from any', async () => {
    const spread = await statuses(101, (i) => token('globex-ci', `198.51.100.${i + 1}`));
    expect(count(spread, 401)).toBe(100);
    expect(count(spread, 429)).toBe(1);
    expect((await token('globex-ci', '192.0.2.1')).status).toBe(429);
    expect((await right('globex-ci', '192.0.2.2')).status).toBe(200);
    expect((await console('globex-ci', CLIENTS['globex-ci'].secret, '192.0.2.3')).status).toBe(303);
    // Other clients are not capped by it.
    expect((await token('acme-ci', '192.0.2.4')).status).toBe(401);
  });
});
