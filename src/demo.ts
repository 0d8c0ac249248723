import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { startHttpServer } from './http/server';
import type { Kafka } from 'kafkajs';
import { App } from './app';
import { Config, loadConfig } from './config/config';
import { decodeStatus } from './codec/status-codec';
import { createKafka } from './kafka/client';
import { loadKafkaScript } from './local-kafka';
import { createLogger, Logger } from './log';
import type { JsonObject } from './model/json';
import type { RunStatus, RunStatusUpdate } from './model/status';
import { newRunId, samplePortMessage } from './sample';
import { formatStatusLine } from './status/format';
import { DemoBackends, startDemoBackends } from './dev/demo-backends';
import { demoCatalog } from './dev/demo-catalog';

interface Scenario {
  title: string;
  runId: string;
  /** The message value produced on the trigger topic. */
  value: string;
  expect: RunStatus;
  /** Also expected: a dead letter for this run. */
  deadLetter?: boolean;
  /** The catalog action the run executes, and its invocation method. */
  action?: string;
  method?: JsonObject;
}

function scenarios(backends: DemoBackends): Scenario[] {
  const run = (title: string, action: string, method: JsonObject, expect: RunStatus, extra: Partial<Scenario> = {}): Scenario => {
    const runId = newRunId();
    return { title, runId, action, method, value: JSON.stringify(samplePortMessage({ runId, action, invocationMethod: method })), expect, ...extra };
  };
  const badRunId = newRunId();
  return [
    run('KAFKA: to the org topic, a backend reports SUCCESS', 'demo_kafka', { type: 'KAFKA' }, 'SUCCESS'),
    run('WEBHOOK (async): signed POST, the receiver reports back', 'demo_webhook', { type: 'WEBHOOK', url: backends.webhookUrl }, 'SUCCESS'),
    run('WEBHOOK (synchronized): the response decides', 'demo_webhook_sync', { type: 'WEBHOOK', url: `${backends.webhookUrl}?sync=1`, synchronized: true }, 'SUCCESS'),
    run('GITHUB: workflow dispatch, followed to its conclusion', 'demo_github', { type: 'GITHUB', org: 'acme', repo: 'deployer', workflow: 'deploy.yml' }, 'SUCCESS'),
    run('GITLAB: pipeline trigger, followed to its end', 'demo_gitlab', { type: 'GITLAB', groupName: 'acme', projectName: 'deployer' }, 'SUCCESS'),
    run('WEBHOOK via agent: org topic, then the agent calls', 'demo_agent', { type: 'WEBHOOK', agent: true, url: backends.webhookUrl, synchronized: true }, 'SUCCESS'),
    run('WEBHOOK target answers 400: FAILURE', 'demo_webhook_400', { type: 'WEBHOOK', url: `${backends.webhookUrl}?status=400` }, 'FAILURE'),
    {
      title: 'Invalid event (no invocation type): dead letter + FAILURE',
      runId: badRunId,
      value: JSON.stringify({ ...samplePortMessage({ runId: badRunId }), payload: { properties: {} } }),
      expect: 'FAILURE',
      deadLetter: true,
    },
  ];
}

async function consumeStatuses(kafka: Kafka, topic: string, onUpdate: (u: RunStatusUpdate) => void) {
  const consumer = kafka.consumer({ groupId: `demo-tail-${newRunId()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void (message.value && onUpdate(await decodeStatus(message.value))) });
  return consumer;
}

export interface DemoOptions {
  /** Stop once the runs are checked, instead of leaving the console running until Ctrl-C. */
  exit?: boolean;
}

/** Console credentials for this demo only: an operator who sees every org, and an admin of org_demo who runs its actions. */
function demoClients(suffix: string): { path: string; clientId: string; secret: string; devId: string; devSecret: string } {
  const secret = randomBytes(12).toString('base64url');
  const devSecret = randomBytes(12).toString('base64url');
  const path = join('.data', 'demo', `clients-${suffix}.json`);
  mkdirSync(dirname(path), { recursive: true });
  const clients = { 'demo-admin': { secret, orgId: '*', roles: ['admin'] }, 'demo-dev': { secret: devSecret, orgId: 'org_demo', roles: ['admin'] } };
  writeFileSync(path, JSON.stringify(clients, null, 2), { mode: 0o600 });
  return { path, clientId: 'demo-admin', secret, devId: 'demo-dev', devSecret };
}

/** The demo's catalog file: its backends' actions and the self-service ones. */
function demoCatalogFile(suffix: string, list: Scenario[]): string {
  const path = join('.data', 'demo', `actions-${suffix}.json`);
  const methods = Object.fromEntries(list.filter((s) => s.action && s.method).map((s) => [s.action!, s.method!]));
  writeFileSync(path, JSON.stringify(demoCatalog(methods), null, 2));
  return path;
}

/** The end-to-end demo: returns the process exit code. */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  let base = loadConfig(process.env);
  const logger: Logger = createLogger(process.env.LOG_LEVEL ?? 'error');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  let stopBroker = async () => undefined as unknown;
  if (base.kafka.brokers.length === 0) {
    const script = await loadKafkaScript();
    say('Starting a local Kafka broker (the first run downloads it from Maven Central)...');
    const broker = await script.ensureBroker();
    base = { ...base, kafka: { ...base.kafka, brokers: [broker.brokers] } };
    if (broker.started) stopBroker = () => script.stopSharedBroker();
    say(`Kafka: ${broker.brokers}`);
  }
  const suffix = newRunId().slice(2, 8).toLowerCase().replace(/[^a-z0-9]/g, 'x');
  const backends = await startDemoBackends();
  const clients = demoClients(suffix);
  const list = scenarios(backends);
  const config: Config = {
    ...base,
    actionsPath: demoCatalogFile(suffix, list),
    // retire_service needs an approval: waiting runs are sealed with this demo-only key.
    approvals: { ...base.approvals, secret: base.approvals.secret ?? randomBytes(32).toString('base64url') },
    api: { ...base.api, clientsFile: clients.path },
    groupId: `demo-${suffix}`,
    httpPort: 0,
    topics: {
      ...base.topics,
      trigger: `demo-${suffix}.action-triggers`,
      status: `demo-${suffix}.action-run-status`,
      dlq: `demo-${suffix}.action-triggers.dlq`,
      orgTemplate: `demo-${suffix}.{orgId}.runs`,
    },
    signing: { defaultSecret: 'demo-secret', orgSecrets: {} },
    invokers: backends.invokerConfig(base.invokers),
  };
  say(`Topics: ${config.topics.trigger} -> ${config.topics.orgTemplate} / ${config.topics.status} / ${config.topics.dlq}`);
  const router = new App(config, logger.child({ app: 'router' }));
  // The agent as `action-router agent` runs it: Port's default payload mapping.
  const { agentParts } = await import('./agent/agent');
  const parts = await agentParts(config, 'org_demo', {});
  const agent = new App(config, logger.child({ app: 'agent' }), { mode: 'agent', orgId: 'org_demo', intake: () => parts.intake, agentInvoker: parts.invoker });
  const kafka = createKafka(config.kafka, logger, '-demo');
  const byRun = new Map(list.map((s) => [s.runId, s]));
  const reached = new Map<string, RunStatus>();
  let done!: () => void;
  const allDone = new Promise<void>((r) => (done = r));
  await router.start();
  const server = await listen(base.httpPort, router, logger);
  const consoleUrl = `http://localhost:${(server.server.address() as AddressInfo).port}/`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: config.topics.orgTemplate.replace('{orgId}', 'org_demo'), numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  const tail = await consumeStatuses(kafka, config.topics.status, (u) => {
    const s = byRun.get(u.runId);
    if (!s) return;
    say(`  ${formatStatusLine(u)}`);
    if (u.status !== 'IN_PROGRESS') reached.set(u.runId, u.status);
    if (list.every((x) => reached.has(x.runId))) done();
  });
  const kafkaBackend = await backends.startKafkaBackend(kafka, config);
  await agent.start();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  say('\nProducing one run per invocation type, and one invalid event:');
  for (const s of list) say(`  ${s.runId}  ${s.title}`);
  await producer.send({ topic: config.topics.trigger, messages: list.map((s) => ({ key: s.runId, value: s.value })) });
  say('\nStatus stream:');
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref());
  const result = await Promise.race([allDone.then(() => 'ok' as const), timeout]);
  const dlqCount = await backends.countDeadLetters(kafka, config.topics.dlq);

  say('\nResult:');
  let ok = result === 'ok';
  for (const s of list) {
    const got = reached.get(s.runId);
    const pass = got === s.expect;
    ok &&= pass;
    say(`  ${pass ? 'ok  ' : 'FAIL'} ${s.title}: expected ${s.expect}, got ${got ?? 'nothing final'}`);
  }
  const expectedDlq = list.filter((s) => s.deadLetter).length;
  say(`  ${dlqCount === expectedDlq ? 'ok  ' : 'FAIL'} dead-letter topic holds ${dlqCount} message(s), expected ${expectedDlq}`);
  ok &&= dlqCount === expectedDlq;

  say(ok ? '\nDemo passed: every run reached its expected state.' : '\nDemo FAILED.');
  if (!options.exit) {
    say(`\nRuns console: ${consoleUrl}\n  sign in as ${clients.clientId} / ${clients.secret} (an operator: every org's runs and dead letters)`);
    say(`  or as ${clients.devId} / ${clients.devSecret} (org_demo's admin: the self-service page at ${consoleUrl}actions)\n  (Ctrl-C stops the demo; --exit skips this)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    say('\nStopping...');
  }
  await server.close();
  await producer.disconnect();
  await tail.disconnect();
  await kafkaBackend.disconnect();
  await agent.stop();
  await router.stop();
  await backends.close();
  await stopBroker();
  return ok ? 0 : 1;
}

/** The router's HTTP server on HTTP_PORT, or on any free port when that one is taken. */
async function listen(port: number, app: App, logger: Logger): Promise<FastifyInstance> {
  try {
    return await startHttpServer(port, app, logger);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    return startHttpServer(0, app, logger);
  }
}
