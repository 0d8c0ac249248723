import { Partitioners } from 'kafkajs';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { Config } from '../config/config';
import { FakeGithub } from './fake-github';
import { FakeGitlab } from './fake-gitlab';
import { WebhookReceiver } from './webhook-receiver';
import { buildUpdate } from '../status/publisher';
import { newRunId } from '../sample';

export const DEMO_SECRET = 'demo-secret';

/**
 * The backends the demo routes to, all real local servers: a webhook
 * receiver that reports async runs back on the status topic, a GitHub and
 * a GitLab speaking their APIs, and a KAFKA backend consuming the org topic.
 */
export interface DemoBackends {
  webhookUrl: string;
  invokerConfig(base: Config['invokers']): Config['invokers'];
  startKafkaBackend(kafka: Kafka, config: Config): Promise<Consumer>;
  countDeadLetters(kafka: Kafka, topic: string): Promise<number>;
  close(): Promise<void>;
}

export async function startDemoBackends(): Promise<DemoBackends> {
  const webhook = new WebhookReceiver(DEMO_SECRET);
  const github = new FakeGithub({ token: 'demo-github-token', stepMs: 300 });
  const gitlab = new FakeGitlab({ triggerTokens: { 'acme/deployer': 'demo-trigger-token' }, apiToken: 'demo-api-token', stepMs: 300 });
  await Promise.all([webhook.start(), github.start(), gitlab.start()]);
  let producer: Producer | null = null;
  let statusTopic = '';
  const reportBack = async (runId: string, orgId: string | null, log: string) => {
    if (!producer) return;
    const update = buildUpdate({ runId, orgId, action: 'deploy_service' }, { status: 'SUCCESS', source: 'BACKEND', summary: log });
    await producer.send({ topic: statusTopic, messages: [{ key: runId, value: JSON.stringify(update) }] });
  };
  webhook.onRun = (run) => {
    // An async receiver does its work, then reports the result itself.
    if (run.runId && !run.request.query.get('sync') && run.request.query.get('status') === null) {
      setTimeout(() => void reportBack(run.runId!, 'org_demo', 'Webhook backend finished the deployment'), 200);
    }
  };
  return {
    webhookUrl: `${webhook.url}/hooks/deploy`,
    invokerConfig: (base) => ({
      ...base,
      webhook: { ...base.webhook, allowedHosts: ['127.0.0.1', 'localhost'], retry: { ...base.webhook.retry, initialDelayMs: 100 } },
      github: { ...base.github, apiUrl: github.url, token: 'demo-github-token', pollIntervalMs: 200 },
      gitlab: { ...base.gitlab, url: gitlab.url, triggerTokens: { 'acme/deployer': 'demo-trigger-token' }, apiToken: 'demo-api-token', pollIntervalMs: 200 },
    }),
    async startKafkaBackend(kafka, config) {
      statusTopic = config.topics.status;
      producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const consumer = kafka.consumer({ groupId: `demo-kafka-backend-${newRunId()}` });
      await consumer.connect();
      await consumer.subscribe({ topic: config.topics.orgTemplate.replace('{orgId}', 'org_demo'), fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const msg = JSON.parse(message.value!.toString()) as { context: { runId: string }; payload: { action: { invocationMethod: { agent?: boolean } } } };
          if (msg.payload.action.invocationMethod.agent) return; // the agent's
          await reportBack(msg.context.runId, 'org_demo', 'KAFKA backend consumed the run and deployed');
        },
      });
      const disconnect = consumer.disconnect.bind(consumer);
      consumer.disconnect = async () => {
        await disconnect();
        await producer?.disconnect();
      };
      return consumer;
    },
    async countDeadLetters(kafka, topic) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const offsets = await admin.fetchTopicOffsets(topic);
        return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
      } finally {
        await admin.disconnect();
      }
    },
    async close() {
      await Promise.all([webhook.close(), github.close(), gitlab.close()]);
    },
  };
}
