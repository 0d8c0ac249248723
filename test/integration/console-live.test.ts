import type { App } from '../../src/app';
import { ApiClient, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/** The console's live feed shared between orgs: slots per org, and each stream told only of its org's changes. */
describe('console live feed between orgs', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  const kafka = new TestKafka();
  const abort = new AbortController();

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp(testConfig(topics, apiEnv({ CONSOLE_LIVE_MAX_PER_ORG: '3', CONSOLE_LIVE_MAX_PER_CLIENT: '2', CONSOLE_LIVE_MAX_STREAMS: '10' })), { routing: false });
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    abort.abort();
    await api.close();
    await app.stop();
    await kafka.close();
  });

  /** An open stream and the events it has received. */
  async function stream(client: 'acme-ci' | 'acme-agent' | 'globex-ci', signal = abort.signal): Promise<{ status: number; events: { event: string; data: unknown }[] }> {
    const res = await fetch(`${api.base}/console/events`, { headers: { authorization: `Bearer ${await api.token(client)}` }, signal });
    const events: { event: string; data: unknown }[] = [];
    if (res.status === 200 && res.body) {
      void (async () => {
        const decoder = new TextDecoder();
        let text = '';
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            text += decoder.decode(chunk, { stream: true });
            let end: number;
            while ((end = text.indexOf('\n\n')) >= 0) {
              const block = text.slice(0, end);
              text = text.slice(end + 2);
              const event = /^event: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1];
              if (event && data) events.push({ event, data: JSON.parse(data) });
            }
          }
        } catch {
          /* aborted */
        }
      })();
    } else {
      await res.arrayBuffer().catch(() => undefined);
    }
    return { status: res.status, events };
  }

  test('streams are capped per client and per org; another org still gets its own', async () => {
    const mine = new AbortController();
    try {
      const a1 = await stream('acme-ci', mine.signal);
      const a2 = await stream('acme-ci', mine.signal);
      const a3 = await stream('acme-ci', mine.signal);
      expect([a1.status, a2.status, a3.status]).toEqual([200, 200, 503]);
      const b1 = await stream('acme-agent', mine.signal);
      const b2 = await stream('acme-agent', mine.signal);
      // The org holds its 3 slots (two clients): its next stream is refused, another org's is not.
      expect([b1.status, b2.status]).toEqual([200, 503]);
      expect((await stream('globex-ci', mine.signal)).status).toBe(200);
    } finally {
      mine.abort();
    }
    // Closed streams give their slots back.
    await eventually(async () => {
      const probe = new AbortController();
      const s = await stream('acme-agent', probe.signal);
      probe.abort();
      return s.status === 200;
    }, 'the slots given back');
  });

  test("a burst of another org's changes reaches that org's streams only, as that org's count", async () => {
    const acme = await stream('acme-ci');
    const globex = await stream('globex-ci');
    expect([acme.status, globex.status]).toEqual([200, 200]);
    await eventually(() => acme.events.some((e) => e.event === 'hello') && globex.events.some((e) => e.event === 'hello'), 'both streams open');
    const N = 3_000;
    const at = Date.now();
    await kafka.produce(
      topics.status,
      Array.from({ length: N }, (_, i) => ({
        key: `r_burst_${i}`,
        value: JSON.stringify({ runId: `r_burst_${i}`, orgId: 'org_globex', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [], externalRunId: null, log: null, invocationType: 'KAFKA', source: 'ROUTER', attempt: 1, at }),
      })),
    );
    const told = () => globex.events.reduce((n, e) => n + (e.event === 'reload' ? (e.data as { runs: number }).runs : e.event === 'runs' ? (e.data as unknown[]).length : 0), 0);
    await eventually(() => told() >= N, "globex's stream told of all its runs", 30_000);
    expect(globex.events.some((e) => e.event === 'reload')).toBe(true);
    for (const e of globex.events.filter((x) => x.event === 'reload')) expect((e.data as { runs: number }).runs).toBeLessThanOrEqual(N);
    // A marker change of acme's own, after the burst: when it arrives, anything about globex's burst would have too.
    const mine = 'r_acme_marker';
    await kafka.produce(topics.status, [{ key: mine, value: JSON.stringify({ runId: mine, orgId: 'org_acme', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [], externalRunId: null, log: null, invocationType: 'KAFKA', source: 'ROUTER', attempt: 1, at: Date.now() }) }]);
    await eventually(() => acme.events.some((e) => e.event === 'runs'), "acme's own change on its stream");
    expect(acme.events.filter((e) => e.event !== 'hello')).toEqual([{ event: 'runs', data: [expect.objectContaining({ id: mine })] }]);
  });
});
