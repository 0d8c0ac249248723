import { Partitioners } from 'kafkajs';
import type { FastifyInstance } from 'fastify';
import { App } from './app';
import { RouterMetrics } from './metrics/metrics';
import { ApiClients } from './api/clients';
import { Config, loadConfig, registryOptions } from './config/config';
import { ConfigError, describeError } from './errors';
import { Args, parseArgs } from './cli-args';
import { startHttpServer } from './http/server';
import { createKafka } from './kafka/client';
import { loadKafkaScript, localBrokerAvailable } from './local-kafka';
import { Logger, createLogger } from './log';
import { agentGroupId, agentLedgerPlace, agentParts, agentTopic } from './agent/agent';
import { withPortAgentAliases } from './config/port-agent-env';
import { newRunId, samplePortMessage } from './sample';
import { formatStatusLine } from './status/format';
import { decodeStatus } from './codec/status-codec';
import { createRegistryCodec } from './codec/registry';
import type { JsonObject } from './model/json';
import { accessSync, constants as fsConstants, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CheckScope, checkBeforeStart, connectionChecks, formatCheck } from './doctor';

const USAGE = `action-router — routes self-service action runs over Kafka

Usage:
  action-router start                       run the router (env configures it; see README)
  action-router agent --org ORG_ID          agent mode: run the org topic's agent runs
  action-router api                         the run store and Port's runs API only (no routing)
  action-router trigger [options]           produce trigger events
      --type KAFKA|WEBHOOK|GITHUB|GITLAB    invocation type (default KAFKA)
      --org ORG_ID --action ID --run-id ID  (defaults: org_demo, deploy_service, random)
      --url URL --method POST --sync        WEBHOOK target, method, synchronized
      --agent                               flag the run for an agent
      --props JSON                          user inputs (a JSON object)
      --invocation JSON                     more invocationMethod fields (repo, workflow...)
      --file PATH                           send this JSON file as is
      --count N                             how many (default 1)
  action-router tail [--from-now] [--run-id ID]   print the status stream
  action-router runs list|show|logs|watch   runs through the runs API (action-router runs help)
  action-router dead-letters resend P/O | --reason R
                                            re-send one dead letter (its partition/offset) or every letter of a reason
  action-router doctor [--org ORG_ID]       check the connection to Kafka and the registry, and say what works
  action-router demo [--exit]               end-to-end demo on a local Kafka, then the runs console
                                            until Ctrl-C (--exit: stop after the check)

With KAFKA_BROKERS unset, start, agent and demo start a local Kafka broker.`;

function str(args: Args, key: string): string | undefined {
  const v = args[key];
  return typeof v === 'string' ? v : undefined;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`action-router: ${message}\n`);
  process.exit(code);
}

function configOrExit(): Config {
  try {
    const config = loadConfig(process.env);
    // A bad clients file stops the start, naming the variable.
    if (config.api.clientsFile) ApiClients.load(config.api.clientsFile);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) fail(`configuration error: ${err.message}`);
    throw err;
  }
}

/** Fills KAFKA_BROKERS with the embedded local broker when unset. */
async function withBrokers(given: Config, logger: Logger): Promise<{ config: Config; stopBroker: () => Promise<void> }> {
  if (given.kafka.brokers.length > 0) return { config: given, stopBroker: async () => undefined };
  // An installation without the local broker's manager (the container image) cannot start one.
  if (!localBrokerAvailable()) fail('configuration error: KAFKA_BROKERS: required (host:port,host:port); this installation has no local broker to start');
  const script = await loadKafkaScript();
  const broker = await script.ensureBroker();
  const config = Object.freeze({ ...given, kafka: Object.freeze({ ...given.kafka, brokers: Object.freeze([broker.brokers]) as string[] }) });
  logger.info({ brokers: broker.brokers }, `KAFKA_BROKERS is unset: using the local Kafka broker at ${broker.brokers}`);
  return { config, stopBroker: broker.started ? async () => void (await script.stopSharedBroker()) : async () => undefined };
}

/** The agent's org from the environment: AGENT_ORG_ID, else Port's PORT_ORG_ID. */
function agentOrgFromEnv(): string | undefined {
  try {
    return withPortAgentAliases(process.env).AGENT_ORG_ID || undefined;
  } catch {
    return process.env.AGENT_ORG_ID || process.env.PORT_ORG_ID || undefined;
  }
}

/** What a process of this mode reads and writes, for the connection checks. */
function checkScope(config: Config, mode: 'router' | 'agent' | 'api', orgId?: string): CheckScope {
  const { topics } = config;
  if (mode === 'agent') return { topics: [agentTopic(config, orgId ?? ''), topics.status], groupId: agentGroupId(config) };
  // With the console, sign-outs go through a topic of their own.
  const signOuts = config.console.enabled && config.console.signOutTopic ? [config.console.signOutTopic] : [];
  if (mode === 'api') return { topics: [topics.status, topics.dlq, ...signOuts] };
  return { topics: [topics.trigger, topics.status, topics.dlq, ...(config.store.enabled ? signOuts : [])], groupId: config.groupId };
}

/**
 * `action-router doctor`: every connection check, one line each; exit 1
 * when one failed.
 */
async function doctor(args: Args): Promise<void> {
  const config = configOrExit();
  if (config.kafka.brokers.length === 0) fail('doctor checks a cluster: set KAFKA_BROKERS');
  const org = str(args, 'org') ?? agentOrgFromEnv();
  const checks = await connectionChecks(config, checkScope(config, org ? 'agent' : 'router', org));
  for (const c of checks) process.stdout.write(`${formatCheck(c)}\n`);
  const failed = checks.filter((c) => c.status === 'fail').length;
  process.stdout.write(failed ? `\n${failed} problem(s): the router would not start.\n` : '\nEverything the router needs answers.\n');
  process.exit(failed ? 1 : 0);
}

/**
 * The directory of the file this instance keeps (the run store's, or an
 * agent's call ledger) exists and can be written, or the start stops naming
 * the variable that put it there (a read-only root filesystem without a
 * data volume, a volume owned by another user).
 */
function checkDataDirectory(config: Config, mode: 'router' | 'agent' | 'api', orgId?: string): void {
  let file: { path: string; variable: string; what: string };
  if (mode === 'agent') {
    if (!config.noRepeat) return;
    file = { ...agentLedgerPlace(config, orgId ?? ''), what: "the agent's call ledger" };
  } else if (config.store.enabled) file = { path: config.store.path, variable: process.env.RUNS_DB_PATH ? 'RUNS_DB_PATH' : 'DATA_DIR', what: 'the run store' };
  else return;
  const dir = dirname(resolve(file.path));
  const { variable } = file;
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsConstants.W_OK);
  } catch (err) {
    fail(`configuration error: ${variable}: ${file.what}'s directory ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): mount a writable volume there, or set ${variable}`);
  }
}

async function runService(mode: 'router' | 'agent' | 'api', orgId?: string): Promise<void> {
  const given = configOrExit();
  checkDataDirectory(given, mode, orgId);
  const logger = createLogger(given.logLevel);
  const { config, stopBroker } = await withBrokers(given, logger);
  // The connection first: a wrong CA, password or ACL is one clear line
  // each and a non-zero exit, not a retry loop in the logs.
  const gate = await checkBeforeStart(config, checkScope(config, mode, orgId), config.kafka.startTimeoutMs, (waiting) =>
    logger.warn({ problems: waiting.map(formatCheck) }, `waiting for the cluster (KAFKA_START_TIMEOUT_MS=${config.kafka.startTimeoutMs})`),
  );
  for (const w of gate.warnings) logger.warn(formatCheck(w));
  if (gate.failures.length > 0) {
    await stopBroker();
    process.stderr.write(`action-router: cannot start: ${gate.failures.length} problem(s) with the connection:\n${gate.failures.map((f) => `  ${formatCheck(f)}\n`).join('')}`);
    process.exit(1);
  }
  let app: App;
  let stopping = false;
  const servers: FastifyInstance[] = [];
  async function shutdown(signal: string, code = 0): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Fastify's close, so that its onClose hooks run (the live feed ends its streams) before the store closes.
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
    // Whatever fails while stopping is said, and the exit code still given (never an unhandled rejection).
    let exitCode = code;
    await app.stop().catch((err: unknown) => {
      logger.error({ err: describeError(err) }, 'stopping failed');
      exitCode = exitCode || 1;
    });
    await stopBroker().catch(() => undefined);
    process.exit(exitCode);
  }
  // A consumer that kafkajs will not restart: exit non-zero so that the
  // supervisor (systemd, Kubernetes) starts a fresh process.
  const onFatal = (err: unknown) => {
    logger.fatal({ err: describeError(err) }, 'consumer stopped for good; exiting');
    void shutdown('fatal', 1);
  };
  // The agent's payload mapping is compiled before anything starts: a bad file stops here, naming the mapping and field.
  let agent: Awaited<ReturnType<typeof agentParts>> | undefined;
  try {
    if (mode === 'agent') agent = await agentParts(config, orgId!);
  } catch (err) {
    await stopBroker();
    fail(describeError(err));
  }
  try {
    if (mode === 'api' && !config.store.enabled) fail('action-router api serves the run store: RUNS_STORE must not be false');
    app = new App(
      config,
      logger,
      mode === 'agent'
        ? { mode, orgId, onFatal, intake: () => agent!.intake, agentInvoker: agent!.invoker, metrics: new RouterMetrics(true) }
        : { mode: 'router', onFatal, routing: mode === 'router', metrics: new RouterMetrics(true) },
    );
  } catch (err) {
    await stopBroker();
    fail(describeError(err));
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // SIGHUP re-reads the clients file (it is also watched); it never stops the process.
  process.on('SIGHUP', () => app.runs?.reloadClients('SIGHUP'));
  try {
    servers.push(await startHttpServer(config.httpPort, app, logger));
    await app.start();
  } catch (err) {
    // Leave nothing behind: not the group, not the broker this call started.
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
    await app.stop().catch(() => undefined);
    await stopBroker();
    throw err;
  }
}

async function trigger(args: Args): Promise<void> {
  const given = configOrExit();
  const logger = createLogger(given.logLevel === 'info' ? 'warn' : given.logLevel);
  const { config, stopBroker } = await withBrokers(given, logger);
  const kafka = createKafka(config.kafka, logger, '-trigger');
  const producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const count = Number(str(args, 'count') ?? 1);
  const messages: { key: string | null; value: string }[] = [];
  for (let i = 0; i < count; i++) {
    if (str(args, 'file')) {
      const body = readFileSync(str(args, 'file')!, 'utf8');
      messages.push({ key: null, value: body });
      continue;
    }
    const type = (str(args, 'type') ?? 'KAFKA').toUpperCase();
    const method: JsonObject = { type };
    if (args.agent) method.agent = true;
    if (str(args, 'url')) method.url = str(args, 'url')!;
    if (str(args, 'method')) method.method = str(args, 'method')!.toUpperCase();
    if (args.sync) method.synchronized = true;
    // Backend fields (org, repo, workflow, projectName, ...): --invocation '{"repo":"x"}'
    if (str(args, 'invocation')) Object.assign(method, JSON.parse(str(args, 'invocation')!) as JsonObject);
    const runId = count === 1 && str(args, 'run-id') ? str(args, 'run-id')! : newRunId();
    const msg = samplePortMessage({
      runId,
      orgId: str(args, 'org'),
      action: str(args, 'action'),
      invocationMethod: method,
      properties: str(args, 'props') ? (JSON.parse(str(args, 'props')!) as JsonObject) : undefined,
    });
    messages.push({ key: runId, value: JSON.stringify(msg) });
  }
  // In slices: one request for thousands of runs would pass the broker's size limit.
  for (let i = 0; i < messages.length; i += 200) await producer.send({ topic: config.topics.trigger, messages: messages.slice(i, i + 200) });
  await producer.disconnect();
  for (const m of messages) process.stdout.write(`${m.key ?? '(from file)'} -> ${config.topics.trigger}\n`);
  await stopBroker();
}

async function tail(args: Args): Promise<void> {
  const given = configOrExit();
  const logger = createLogger('warn');
  const { config, stopBroker } = await withBrokers(given, logger);
  const kafka = createKafka(config.kafka, logger, '-tail');
  const consumer = kafka.consumer({ groupId: `action-router-tail-${newRunId()}` });
  const options = registryOptions(config);
  const registry = options ? createRegistryCodec(options) : undefined;
  const only = str(args, 'run-id');
  await consumer.connect();
  await consumer.subscribe({ topic: config.topics.status, fromBeginning: !args['from-now'] });
  const stop = async () => {
    await consumer.disconnect();
    await stopBroker();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      if (!message.value) return;
      try {
        const update = await decodeStatus(message.value, registry);
        if (!only || update.runId === only) process.stdout.write(`${formatStatusLine(update)}\n`);
      } catch (err) {
        process.stdout.write(`(unreadable update at offset ${message.offset}: ${describeError(err)})\n`);
      }
    },
  });
}

export async function main(argv: string[]): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    return fail(describeError(err), 1);
  }
  const command = args._[0];
  try {
    switch (command) {
      case 'start':
        return await runService('router');
      case 'api':
        return await runService('api');
      case 'agent': {
        const org = str(args, 'org') ?? agentOrgFromEnv();
        if (!org) fail('agent needs --org ORG_ID (or AGENT_ORG_ID, or Port\'s PORT_ORG_ID)');
        return await runService('agent', org);
      }
      case 'trigger':
        return await trigger(args);
      case 'tail':
        return await tail(args);
      case 'doctor':
        return await doctor(args);
      case 'runs': {
        const { runsCommand } = await import('./cli-runs');
        const code = await runsCommand(args, process.env, (line) => process.stdout.write(`${line}\n`));
        process.exit(code);
        return;
      }
      case 'dead-letters': {
        const { deadLettersCommand } = await import('./cli-runs');
        const code = await deadLettersCommand(args, process.env, (line) => process.stdout.write(`${line}\n`));
        process.exit(code);
        return;
      }
      case 'demo': {
        const { runDemo } = await import('./demo');
        process.exit(await runDemo({ exit: args.exit === true }));
        return;
      }
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        return;
      default:
        fail(`unknown command "${command}"\n\n${USAGE}`);
    }
  } catch (err) {
    // The runs commands' own errors (cli-runs, loaded on use) are already readable.
    if (err instanceof Error && err.name === 'CliError') fail(err.message, 1);
    fail(describeError(err), 1);
  }
}
