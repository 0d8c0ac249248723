import type { Config } from '../../src/config/config';
import { samplePortMessage } from '../../src/sample';
import { ApiClient, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * Polling agents racing for runs while the store lags behind the status
 * topic: its view of which runs are free is stale, and their claims sit
 * behind a backlog. A claim not applied in time is handed to nobody, and
 * no run goes to two agents.
 */
describe('polling agents racing while the run store lags', () => {
  const RUNS = 30;
  const BACKLOG = 150_000;
  const kafka = new TestKafka();
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s();
    await kafka.close();
  });

  const filler = (i: number) =>
    JSON.stringify({
      runId: `r_fill_${i}`, orgId: 'org_globex', action: 'deploy', status: 'IN_PROGRESS', statusLabel: `step ${i}`, summary: null, links: [],
      externalRunId: null, log: null, invocationType: 'KAFKA', source: 'ROUTER', attempt: 1, at: Date.now(),
    });

  async function produceBacklog(topic: string): Promise<void> {
    // Parts of 2,000 records (a produce request stays under the broker's 1 MB), four at a time.
    const part = 2_000;
    for (let start = 0; start < BACKLOG; start += 4 * part) {
      await Promise.all(
        [0, 1, 2, 3].map((k) => {
          const from = start + k * part;
          return kafka.produce(topic, Array.from({ length: Math.min(part, BACKLOG - from) }, (_, i) => ({ key: `r_fill_${from + i}`, value: filler(from + i) })));
        }),
      );
    }
  }

  test('stale reads and slow claims: each run goes to one agent, the one whose claim won; claims not applied in time go to nobody', async () => {
    const topics: TestTopics = testTopics();
    // Claims lapse after 3 s unless acknowledged, and a claim not applied within 1 s is given up.
    const config: Config = testConfig(topics, apiEnv({ AGENT_DELIVERY: 'http', AGENT_CLAIM_SECONDS: '3', RUNS_APPLY_TIMEOUT_SECONDS: '1' }));

    // The router stores the agent runs, then stops; a backlog lands on the status topic while no writer runs.
    const router = await startApp(config);
    const ids = Array.from({ length: RUNS }, (_, i) => `r_race_${i}`);
    await kafka.produce(
      topics.trigger,
      ids.map((runId) => ({
        key: runId,
        value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_acme', invocationMethod: { type: 'WEBHOOK', agent: true, url: 'http://internal.acme/deploy' } })),
      })),
    );
    await eventually(() => ids.every((id) => router.runs!.store.getRun(id)?.agentPayload != null), 'every agent run in the store');
    await router.stop();
    await produceBacklog(topics.status);

    // The same store file, BACKLOG updates behind the topic: the agents poll while it catches up.
    const app = await startApp(config, { routing: false });
    const api = await ApiClient.start(app);
    stops.push(async () => {
      await api.close();
      await app.stop();
    });
    const store = app.runs!.store;
    const lastFiller = `r_fill_${BACKLOG - 1}`;
    expect(store.getRun(lastFiller)).toBeUndefined();

    const handed: Record<string, string[]> = { 'acme-agent': [], 'acme-ci': [] };
    let caughtUp = false;
    let emptySlowPollsWhileLagging = 0;
    let claimedNotHandedAtCatchUp: string[] = [];
    const allHanded = () => handed['acme-agent']!.length + handed['acme-ci']!.length >= RUNS;
    const agent = async (client: 'acme-agent' | 'acme-ci') => {
      const deadline = Date.now() + 120_000;
      while (!allHanded() && Date.now() < deadline) {
        const lagging = !caughtUp;
        const t0 = Date.now();
        const res = await api.as(client, 'POST', '/v1/actions/runs/claim-pending', { installationId: client, limit: RUNS, invocationMethod: 'WEBHOOK' });
        expect(res.status).toBe(200);
        const got = (res.body.runs as { id: string }[]).map((r) => r.id);
        if (lagging && got.length === 0 && Date.now() - t0 >= 1_000) emptySlowPollsWhileLagging++;
        handed[client]!.push(...got);
        // As Port's agent does: acknowledge what it was handed (retried while the store answers 503).
        for (const id of got) {
          await eventually(async () => {
            const ack = await api.as(client, 'PATCH', '/v1/actions/runs/ack', { runIds: [id] });
            return ack.status === 200 && ack.body.ackedCount === 1;
          }, `${client} acknowledges ${id}`);
        }
        if (got.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
    };
    const watching = (async () => {
      await eventually(() => store.getRun(lastFiller) !== undefined, 'the backlog applied', 120_000);
      caughtUp = true;
      const handedSoFar = new Set([...handed['acme-agent']!, ...handed['acme-ci']!]);
      claimedNotHandedAtCatchUp = ids.filter((id) => store.getRun(id)!.claimBy !== null && !handedSoFar.has(id));
    })();
    await Promise.all([agent('acme-agent'), agent('acme-ci'), watching]);

    const all = [...handed['acme-agent']!, ...handed['acme-ci']!];
    // Every run was handed out, none twice (to the same agent or to both).
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual([...ids].sort());
    // Each went to the agent whose claim the store holds, acknowledged.
    for (const [client, runIds] of Object.entries(handed)) {
      for (const id of runIds) {
        const run = store.getRun(id)!;
        expect({ id, claimBy: run.claimBy, acked: run.claimAcked }).toEqual({ id, claimBy: client, acked: 1 });
      }
    }
    // The race ran against a lagging store: polls whose claims were not applied within the second came back
    // empty, and when the store caught up it held claims that nobody had been handed (they lapsed, and the
    // runs were handed out afterwards).
    expect(emptySlowPollsWhileLagging).toBeGreaterThan(0);
    expect(claimedNotHandedAtCatchUp.length).toBeGreaterThan(0);
  }, 240_000);
});
