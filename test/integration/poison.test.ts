import type { KafkaMessage } from 'kafkajs';
import type { App } from '../../src/app';
import { TriggerIntake } from '../../src/router/stages/intake';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, TestTopics, eventually, json, startApp, testConfig, testTopics } from '../helpers/kafka';

/** No input can stall a partition: writes that can never succeed end as dead letters. */
describe('poison never stalls a partition', () => {
  const k = new TestKafka();
  let topics: TestTopics;
  let app: App | null = null;
  beforeEach(() => {
    topics = testTopics();
  });
  afterEach(async () => {
    await app?.stop();
    app = null;
  });
  afterAll(() => k.close());

  async function committedToEnd(): Promise<boolean> {
    const admin = k.kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(topics.trigger);
      const [committed] = await admin.fetchOffsets({ groupId: topics.group, topics: [topics.trigger] });
      return ends.every((e) => committed!.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
    } finally {
      await admin.disconnect();
    }
  }

  const message = (runId: string, properties: Record<string, string> = {}) =>
    JSON.stringify(samplePortMessage({ runId, orgId: 'org_poison', invocationMethod: { type: 'KAFKA' }, properties: { version: '1', ...properties } }));

  it('an oversized run among 1,000 good ones: the good are routed, the big one is dead-lettered (trimmed) with FAILURE', async () => {
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_poison');
    // Topics that take less than the trigger topic: the org message and its dead letter are both too large.
    const admin = k.kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: orgTopic, numPartitions: 2, configEntries: [{ name: 'max.message.bytes', value: '300000' }] },
        { topic: topics.dlq, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '200000' }] },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    app = await startApp(testConfig(topics, { SIGNING_SECRET: 's' }));
    const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `r_good_${i}`, value: message(`r_good_${i}`) }));
    messages.splice(500, 0, { key: 'r_big', value: message('r_big', { blob: 'x'.repeat(400_000) }) });
    for (let i = 0; i < messages.length; i += 250) await k.produce(topics.trigger, messages.slice(i, i + 250));

    const routed = await k.collect(orgTopic, (ms) => ms.length >= 1000, 60_000);
    // Each good run exactly once: the big record never shared their requests.
    expect(routed).toHaveLength(1000);
    expect(new Set(routed.map((m) => m.key!.toString())).size).toBe(1000);
    expect(routed.some((m) => m.key!.toString() === 'r_big')).toBe(false);
    const [dead] = await k.collect(topics.dlq, (ms) => ms.length >= 1, 30_000);
    const header = (m: KafkaMessage, h: string) => m.headers![h]!.toString();
    expect(dead!.key!.toString()).toBe('r_big');
    expect(header(dead!, 'x-dlq-reason')).toBe('OUTPUT_TOO_LARGE');
    expect(header(dead!, 'x-dlq-trimmed')).toBe('true');
    expect(Number(header(dead!, 'x-dlq-original-size'))).toBeGreaterThan(400_000);
    expect(dead!.value!.length).toBe(64 * 1024);
    const updates = (await k.collect(topics.status, (ms) => ms.some((m) => json<RunStatusUpdate>(m).runId === 'r_big'), 30_000)).map((m) => json<RunStatusUpdate>(m));
    expect(updates.find((u) => u.runId === 'r_big')).toMatchObject({ status: 'FAILURE', statusLabel: 'OUTPUT_TOO_LARGE' });
    await eventually(committedToEnd, 'the committed offset reaches the end', 30_000);
  }, 120_000);

  it('a handler that throws: the message is dead-lettered as INTERNAL_ERROR, the partition moves on', async () => {
    app = await startApp(testConfig({ ...topics }, { TOPICS_PARTITIONS: '1' }), {
      intake: (d) => {
        const real = new TriggerIntake(d.registry, d.catalog);
        return {
          accept: async (m) => {
            if (m.key?.toString() === 'r_boom') throw new TypeError('boom: a bug in the handler');
            return real.accept(m);
          },
        };
      },
    });
    await k.produce(topics.trigger, [
      { key: 'r_before', value: message('r_before') },
      { key: 'r_boom', value: message('r_boom') },
      { key: 'r_after', value: message('r_after') },
    ]);
    const [dead] = await k.collect(topics.dlq, (ms) => ms.length >= 1, 30_000);
    expect(dead!.headers!['x-dlq-reason']!.toString()).toBe('INTERNAL_ERROR');
    expect(dead!.headers!['x-dlq-error']!.toString()).toContain('boom');
    const updates = (await k.collect(topics.status, (ms) => ms.length >= 3, 30_000)).map((m) => json<RunStatusUpdate>(m));
    expect(updates.find((u) => u.runId === 'r_boom')).toMatchObject({ status: 'FAILURE', statusLabel: 'INTERNAL_ERROR' });
    expect(updates.some((u) => u.runId === 'r_after')).toBe(true);
    await eventually(committedToEnd, 'the committed offset reaches the end', 30_000);
  });
});
