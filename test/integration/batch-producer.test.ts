import type { Producer } from 'kafkajs';
import { ErrorCodes } from '../../src/errors';
import { BatchProducer } from '../../src/kafka/batch-producer';
import { classifyWriteError } from '../../src/kafka/write-error';
import { TestKafka, testTopics } from '../helpers/kafka';

/** The batch producer against the real broker: one run's bad record never fails another run's write. */
describe('BatchProducer', () => {
  const k = new TestKafka();
  const topics = testTopics();
  let producer: Producer;
  beforeAll(async () => {
    producer = k.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
  });
  afterAll(async () => {
    await producer.disconnect();
    await k.deleteTopics(topics);
    await k.close();
  });

  it('a request the broker refuses for one record is split: the others are written once, the bad one is refused alone', async () => {
    // Records up to 2 KB on one partition; a 6 KB record shares the request (it is under the size that travels alone).
    await k.createTopic(topics.trigger, 1, { 'max.message.bytes': '2048' });
    const batch = new BatchProducer(producer, { lingerMs: 50 });
    const sends = ['a', 'b', 'c'].map((key) => batch.send(topics.trigger, { key, value: Buffer.from(`small ${key}`), headers: {} }));
    const big = batch.send(topics.trigger, { key: 'big', value: Buffer.alloc(6_000, 120), headers: {} });
    await Promise.all(sends);
    const refused = await big.then(() => null, (err: unknown) => err);
    expect(classifyWriteError(refused, 'big').code).toBe(ErrorCodes.OUTPUT_TOO_LARGE);
    expect(await k.messageCount(topics.trigger)).toBe(3);
    const written = await k.collect(topics.trigger, (ms) => ms.length >= 3);
    expect(written.map((m) => m.key!.toString()).sort()).toEqual(['a', 'b', 'c']);
  });

  it('a record past the shared-request size travels alone: its refusal touches no other write', async () => {
    const topic = `${topics.status}-alone`;
    await k.createTopic(topic, 1, { 'max.message.bytes': '100000' });
    const batch = new BatchProducer(producer, { lingerMs: 50 });
    const small = batch.send(topic, { key: 's', value: Buffer.from('small'), headers: {} });
    const huge = batch.send(topic, { key: 'h', value: Buffer.alloc(200_000, 120), headers: {} });
    await small;
    await expect(huge).rejects.toBeDefined();
    expect(await k.messageCount(topic)).toBe(1);
  });

  it('an urgent record does not wait out the linger, and takes what is queued with it in one request', async () => {
    const topic = `${topics.status}-urgent`;
    await k.createTopic(topic, 1);
    // A linger no test would wait for: only the urgent send can flush these.
    const batch = new BatchProducer(producer, { lingerMs: 600_000 });
    const requests: number[] = [];
    const sendBatch = producer.sendBatch.bind(producer);
    const counting = Object.create(producer) as Producer;
    counting.sendBatch = (b) => (requests.push(b.topicMessages!.reduce((n, t) => n + t.messages.length, 0)), sendBatch(b));
    const urgentBatch = new BatchProducer(counting, { lingerMs: 600_000 });
    const queued = urgentBatch.send(topic, { key: 'q', value: Buffer.from('queued'), headers: {} });
    const urgent = urgentBatch.send(topic, { key: 'u', value: Buffer.from('urgent'), headers: {} }, { urgent: true });
    await Promise.all([queued, urgent]);
    expect(requests).toEqual([2]);
    expect(await k.messageCount(topic)).toBe(2);
    // Without it, a message waits for the linger.
    let lingering = false;
    const sent = batch.send(topic, { key: 'l', value: Buffer.from('lingering'), headers: {} }).then(() => (lingering = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(lingering).toBe(false);
    batch.flush();
    await sent;
    expect(await k.messageCount(topic)).toBe(3);
  });
});
