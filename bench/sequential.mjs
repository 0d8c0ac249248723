// The "one run at a time per partition" consumer that Port's agent is:
// each message's webhook call completes before the next message of its
// partition starts. Usage: node bench/sequential.mjs BROKERS TOPIC GROUP URL
import '../scripts/quiet-warnings.mjs';
import kafkajs from 'kafkajs';
import http from 'node:http';

const { Kafka, logLevel } = kafkajs;
const [brokers, topic, group, url] = process.argv.slice(2);
const kafka = new Kafka({ brokers: brokers.split(','), clientId: 'bench-sequential', logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
const agent = new http.Agent({ keepAlive: true });
const post = (runId, body) =>
  new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-run-id': runId } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(body);
  });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  partitionsConsumedConcurrently: 64,
  eachMessage: async ({ message }) => {
    const run = JSON.parse(message.value.toString());
    await post(run.context.runId, JSON.stringify(run));
  },
});
process.on('SIGTERM', async () => {
  await consumer.disconnect();
  process.exit(0);
});
