import type { Producer } from 'kafkajs';
import type { App } from '../../src/app';
import { createStatusCodec } from '../../src/codec/status-codec';
import { ErrorCodes } from '../../src/errors';
import { InvokerRegistry } from '../../src/invokers/index';
import type { InvocationOutcome, Invoker } from '../../src/invokers/invoker';
import { AbortedError } from '../../src/net/retry';
import { BatchProducer } from '../../src/kafka/batch-producer';
import { silentLogger } from '../../src/log';
import { RouterMetrics } from '../../src/metrics/metrics';
import type { InvocationType } from '../../src/model/run';
import type { RunStatusUpdate } from '../../src/model/status';
import { Router } from '../../src/router/router';
import { DeadLetterWriter } from '../../src/router/stages/dead-letter';
import { TriggerIntake } from '../../src/router/stages/intake';
import { samplePortMessage } from '../../src/sample';
import { StatusPublisher } from '../../src/status/publisher';
import { TestKafka, TestTopics, eventually, json, startApp, testConfig, testTopics } from '../helpers/kafka';

/** A WEBHOOK invoker whose calls end as `settle` says, counting them. */
function scriptedInvoker(settle: () => Promise<InvocationOutcome>): Invoker & { calls: number } {
  return {
    type: 'WEBHOOK',
    calls: 0,
    announce: () => 'after',
    describe: () => 'a scripted backend',
    invoke() {
      this.calls++;
      return settle();
    },
    close: async () => undefined,
  };
}

describe('router failure paths on a real broker', () => {
  const k = new TestKafka();
  let topics: TestTopics;
  let app: App | null = null;
  let router: Router | null = null;
  let producer: Producer | null = null;
  beforeEach(() => (topics = testTopics()));
  afterEach(async () => {
    await router?.stop();
    await producer?.disconnect();
    await app?.stop();
    router = null;
    producer = null;
    app = null;
    await k.deleteTopics(topics);
  });
  afterAll(() => k.close());

  /** A router of its own parts, with `invoker` as its only one. */
  async function startRouter(invoker: Invoker): Promise<Router> {
    const config = testConfig(topics, { TOPICS_PARTITIONS: '1' });
    await k.createTopic(topics.trigger, 1);
    producer = k.kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    const batch = new BatchProducer(producer);
    router = new Router({
      kafka: k.kafka,
      logger: silentLogger(),
      metrics: new RouterMetrics(),
      intake: new TriggerIntake(),
      invokers: new InvokerRegistry(new Map<InvocationType, Invoker>([['WEBHOOK', invoker]])),
      status: new StatusPublisher(batch, topics.status, createStatusCodec(topics.status)),
      deadLetters: new DeadLetterWriter(batch, topics.dlq),
      mode: 'router',
      topic: topics.trigger,
      groupId: topics.group,
      window: config.window,
    });
    await router.start();
    return router;
  }

  // Issue 18, defect 1: any AbortedError used to settle the message as "stopped": its offset was never completed and the
  // partition's commits stopped there for good. Only the partition's own abort may do that.
  it('an abort that is not the partition’s own is the run’s outcome: FAILURE, and the offset is committed', async () => {
    const invoker = scriptedInvoker(() => Promise.reject(new AbortedError('a shared call another run gave up')));
    await startRouter(invoker);
    const runs = ['r_abort_1', 'r_abort_2'];
    await k.produce(topics.trigger, runs.map((runId) => ({ key: runId, value: JSON.stringify(samplePortMessage({ runId, invocationMethod: { type: 'WEBHOOK', url: 'http://127.0.0.1:9/' } })) })));
    const updates = await k.collect(topics.status, (ms) => ms.filter((m) => json<RunStatusUpdate>(m).status === 'FAILURE').length >= 2);
    const failures = updates.map((m) => json<RunStatusUpdate>(m)).filter((u) => u.status === 'FAILURE');
    expect(failures.map((u) => u.runId).sort()).toEqual(runs);
    expect(failures.every((u) => u.summary?.includes('a shared call another run gave up'))).toBe(true);
    expect(invoker.calls).toBe(2);
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'the committed offset reaches the end');
  });

  // Issue 18, defect 5: an agent run whose first update was refused was still written to the org topic, then
  // dead-lettered: the agent got a run the store never knew, and the letter said it was not routed.
  it('an agent run whose announcement cannot be written is dead-lettered STATUS_REJECTED and never reaches the org topic', async () => {
    // Status records up to 4 KB: the agent run's first update describes the run (its inputs), which is larger.
    await k.createTopic(topics.status, 1, { 'max.message.bytes': '4096' });
    app = await startApp(testConfig(topics, { SIGNING_SECRET: 's', RUNS_STORE: 'false' }));
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_refused');
    const run = samplePortMessage({
      runId: 'r_refused',
      orgId: 'org_refused',
      invocationMethod: { type: 'WEBHOOK', agent: true, url: 'http://backend.internal/hook' },
      properties: { notes: 'n'.repeat(8_000) },
    });
    await k.produce(topics.trigger, [{ key: 'r_refused', value: JSON.stringify(run) }]);
    const [dead] = await k.collect(topics.dlq, (ms) => ms.length >= 1);
    expect(dead!.headers!['x-dlq-reason']!.toString()).toBe(ErrorCodes.STATUS_REJECTED);
    expect(dead!.key!.toString()).toBe('r_refused');
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'the committed offset reaches the end');
    // The org topic is written before the dead letter when it is written at all: by now it would hold the run.
    expect(await k.messageCount(orgTopic)).toBe(0);
    expect((await app.metrics.statusDropped.get()).values.reduce((n, v) => n + v.value, 0)).toBeGreaterThanOrEqual(1);
  });
});
