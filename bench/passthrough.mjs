// Baseline for the benchmarks: consume a topic and produce the same bytes
// to another, with no decoding, in batches, committing after each batch.
// Usage: node bench/passthrough.mjs BROKERS FROM TO GROUP
import '../scripts/quiet-warnings.mjs';
import kafkajs from 'kafkajs';

const { Kafka, logLevel, Partitioners } = kafkajs;
const [brokers, from, to, group] = process.argv.slice(2);
const kafka = new Kafka({ brokers: brokers.split(','), clientId: 'bench-passthrough', logLevel: logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100, maxBytesPerPartition: 1024 * 1024 });
await producer.connect();
await consumer.connect();
await consumer.subscribe({ topic: from, fromBeginning: true });
await consumer.run({
  partitionsConsumedConcurrently: 16,
  eachBatch: async ({ batch }) => {
    await producer.send({ topic: to, acks: -1, messages: batch.messages.map((m) => ({ key: m.key, value: m.value })) });
  },
});
process.on('SIGTERM', async () => {
  await consumer.disconnect();
  await producer.disconnect();
  process.exit(0);
});
