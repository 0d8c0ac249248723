import type { App } from '../../src/app';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, eventually, startApp, testConfig, testTopics, topicEnv } from '../helpers/kafka';
import { DedicatedBroker, spawnRouter, startDedicatedBroker, stopDedicatedBroker, stopped } from '../helpers/processes';
import { Kafka, logLevel } from 'kafkajs';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';

describe('failures of the infrastructure', () => {
  it('recovers on its own from a broker outage, losing nothing', async () => {
    let broker: DedicatedBroker = startDedicatedBroker();
    const client = new Kafka({ brokers: [broker.brokers], logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 2_000 } });
    const topics = testTopics();
    const config = testConfig(topics, { ROUTER_SESSION_TIMEOUT_MS: '10000', KAFKA_BROKERS: broker.brokers });
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: topics.trigger, numPartitions: 3 },
        { topic: topics.orgTemplate.replace('{orgId}', 'org_out'), numPartitions: 2 },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const N = 600;
    const ids = Array.from({ length: N }, (_, i) => `r_outage_${i}`);
    const producer = client.producer();
    await producer.connect();
    await producer.send({ topic: topics.trigger, messages: ids.slice(0, N / 2).map((id) => ({ key: id, value: JSON.stringify(samplePortMessage({ runId: id, orgId: 'org_out' })) })) });
    await producer.disconnect();
    const app: App = await startApp(config);
    /** Every run on the org topic; `copies` counts how often each was written. */
    const copies = new Map<string, number>();
    const readOrgTopic = async (): Promise<Set<string>> => {
      const seen = new Set<string>();
      copies.clear();
      const c = client.consumer({ groupId: `check-${Math.random()}`, maxWaitTimeInMs: 100 });
      await c.connect();
      await c.subscribe({ topic: topics.orgTemplate.replace('{orgId}', 'org_out'), fromBeginning: true });
      let last = Date.now();
      await c.run({
        eachMessage: async ({ message }) => {
          const id = message.key!.toString();
          seen.add(id);
          copies.set(id, (copies.get(id) ?? 0) + 1);
          last = Date.now();
        },
      });
      await eventually(() => Date.now() - last > 1_500 || seen.size >= N, 'org topic read', 30_000);
      await c.disconnect();
      return seen;
    };
    try {
      await eventually(async () => (await readOrgTopic()).size >= 50, 'first runs routed', 30_000);
      const appliedCounter = app.metrics.registry.getSingleMetric('action_router_store_updates_total');
      const appliedBefore = ((await appliedCounter?.get())?.values ?? []).reduce((n, v) => n + v.value, 0);
      // Runs whose outcome the store holds before the outage: none of them may be written again (no run invoked twice).
      const endedBefore = ids.filter((id) => app.runs!.store.callRecord(id)?.callEndedAt != null);
      // Outage: the broker dies hard, stays away for several seconds, and comes back on the same data.
      stopDedicatedBroker(broker, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 6_000));
      broker = startDedicatedBroker(broker.dataDir, broker.port);
      const p2 = client.producer();
      await p2.connect();
      await p2.send({ topic: topics.trigger, messages: ids.slice(N / 2).map((id) => ({ key: id, value: JSON.stringify(samplePortMessage({ runId: id, orgId: 'org_out' })) })) });
      await p2.disconnect();
      let seen = new Set<string>();
      await eventually(async () => (seen = await readOrgTopic()).size >= N, 'every run routed after the outage', 90_000);
      expect(ids.filter((id) => !seen.has(id))).toEqual([]);
      const twice = ids.filter((id) => (copies.get(id) ?? 0) > 1);
      expect(endedBefore.length).toBeGreaterThan(0);
      expect(twice.filter((id) => endedBefore.includes(id))).toEqual([]);
      process.stdout.write(`broker outage: ${endedBefore.length} runs recorded ended before it, ${twice.length} runs written twice (none of those)\n`);
      process.stdout.write(`readiness after the outage: ${JSON.stringify(app.readiness())}\n`);
      // The run store catches up after the router: its consumer restarts on its own schedule.
      await eventually(() => app.ready, `ready again (${app.readiness().reasons.join('; ')})`, 30_000);
      const store = app.runs!;
      await eventually(() => ids.every((id) => store.store.getRun(id) !== undefined), 'every run in the store', 30_000);
      // The store's mirror resumed where it stood: each status record was applied once, and what it
      // had applied before the outage was not fetched again (before the fix, every record was).
      const checker = client.admin();
      await checker.connect();
      const onTopic = (await checker.fetchTopicOffsets(topics.status)).reduce((n, p) => n + Number(p.high), 0);
      await checker.disconnect();
      const sum = async (name: string) => ((await app.metrics.registry.getSingleMetric(name)?.get())?.values ?? []).reduce((n, v) => n + v.value, 0);
      await eventually(async () => (await sum('action_router_store_updates_total')) >= onTopic && (await sum('action_router_store_records_fetched_total')) >= onTopic, 'the counts reported');
      expect(await sum('action_router_store_updates_total')).toBe(onTopic);
      const reread = (await sum('action_router_store_records_fetched_total')) - onTopic;
      process.stdout.write(`status records: ${onTopic}, applied before the outage: ${appliedBefore}, fetched again: ${reread}\n`);
      expect(appliedBefore).toBeGreaterThan(0);
      expect(reread).toBeLessThan(appliedBefore);
    } finally {
      await app.stop();
      stopDedicatedBroker(broker);
    }
  }, 240_000);

  describe('scale-out', () => {
    const k = new TestKafka();
    afterAll(() => k.close());

    async function scenario(stop: 'graceful' | 'kill') {
      const topics = testTopics();
      const N = 2000;
      await k.createTopic(topics.trigger, 6);
      const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_scale');
      await k.createTopic(orgTopic, 2);
      const seen = new Map<string, number>();
      await k.follow(orgTopic, (m) => seen.set(m.key!.toString(), (seen.get(m.key!.toString()) ?? 0) + 1));
      const env = {
        ...topicEnv(topics),
        ROUTER_SESSION_TIMEOUT_MS: '6000',
        ROUTER_COMMIT_INTERVAL_MS: '50',
        ROUTER_MAX_IN_FLIGHT: '32',
        ROUTER_MAX_IN_FLIGHT_PER_PARTITION: '8',
      };
      const a = spawnRouter(env, `scale-a-${stop}`);
      const b = spawnRouter(env, `scale-b-${stop}`);
      // Both routers in the group before the stream starts, so both get partitions.
      await eventually(async () => {
        const admin = k.kafka.admin();
        await admin.connect();
        const [group] = (await admin.describeGroups([topics.group])).groups;
        await admin.disconnect();
        return group?.state === 'Stable' && group.members.length === 2 && group.members.every((m) => m.memberAssignment.length > 8);
      }, 'two members with partitions', 30_000);
      const ids = Array.from({ length: N }, (_, i) => `r_scale_${stop}_${i}`);
      await k.produce(topics.trigger, ids.map((id) => ({ key: id, value: JSON.stringify(samplePortMessage({ runId: id, orgId: 'org_scale', invocationMethod: { type: 'KAFKA' } })) })));
      await eventually(() => seen.size >= N / 4, 'a quarter routed', 30_000);
      a.kill(stop === 'graceful' ? 'SIGTERM' : 'SIGKILL');
      const code = await stopped(a);
      if (stop === 'graceful') expect(code).toBe(0);
      try {
        await eventually(() => seen.size >= N, 'every run routed by the survivor', 60_000);
      } finally {
        b.kill('SIGTERM');
        await stopped(b);
      }
      expect(ids.filter((id) => !seen.has(id))).toEqual([]);
      let dups = 0;
      for (const c of seen.values()) dups += c - 1;
      return dups;
    }

    it('two routers split the partitions; a graceful stop hands them over without loss', async () => {
      const dups = await scenario('graceful');
      process.stdout.write(`scale-out (graceful): ${dups} duplicates\n`);
      // A graceful stop finishes or hands back every run, and the store remembers the rest: nothing is written twice.
      expect(dups).toBe(0);
    }, 120_000);

    it('a router joining mid-stream takes over partitions; nothing is lost, nothing is called twice', async () => {
      const topics = testTopics();
      const receiver = new WebhookReceiver();
      await receiver.start();
      const N = 600;
      const WINDOW = 16;
      await k.createTopic(topics.trigger, 6);
      const seen = new Map<string, number>();
      receiver.onRun = (r) => r.runId && seen.set(r.runId, (seen.get(r.runId) ?? 0) + 1);
      // Each router its own store file, as two pods have (one file shared by two writers stalls one of them).
      const config = () =>
        testConfig(topics, {
          WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
          ROUTER_MAX_IN_FLIGHT: String(WINDOW * 2),
          ROUTER_MAX_IN_FLIGHT_PER_PARTITION: String(WINDOW / 2),
          ROUTER_SESSION_TIMEOUT_MS: '6000',
        });
      const ids = Array.from({ length: N }, (_, i) => `r_join_${i}`);
      await k.produce(
        topics.trigger,
        ids.map((id) => ({ key: id, value: JSON.stringify(samplePortMessage({ runId: id, invocationMethod: { type: 'WEBHOOK', url: `${receiver.url}/h?delay=50`, synchronized: true } })) })),
      );
      const a = await startApp(config());
      let b: App | null = null;
      try {
        await eventually(() => seen.size >= N / 5, 'a fifth delivered', 30_000);
        b = await startApp(config());
        await eventually(() => seen.size >= N, 'every run delivered', 60_000);
        // The newcomer really took part: it consumed some of the stream.
        expect((await b.metrics.received.get()).values[0]?.value ?? 0).toBeGreaterThan(0);
      } finally {
        await b?.stop();
        await a.stop();
        await receiver.close();
      }
      expect(ids.filter((id) => !seen.has(id))).toEqual([]);
      let dups = 0;
      for (const c of seen.values()) dups += c - 1;
      process.stdout.write(`rebalance mid-stream: ${dups} duplicates (window ${WINDOW * 2})\n`);
      // The rebalance hands partitions over gracefully, and the store is read before each call: none called twice.
      expect(dups).toBe(0);
    }, 120_000);

    it('kill -9 of one router: the other takes its partitions after the session timeout, without loss', async () => {
      const dups = await scenario('kill');
      process.stdout.write(`scale-out (kill -9): ${dups} duplicates\n`);
      // Only a write under way at the kill (its outcome not yet recorded) is made again: at most the killed router's window.
      expect(dups).toBeLessThanOrEqual(32);
    }, 120_000);
  });
});
