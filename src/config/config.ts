import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors';
import { kafkaInvokerConfigSchema, kafkaInvokerEnv } from '../invokers/kafka/config';
import { webhookConfigSchema, webhookEnv } from '../invokers/webhook/config';
import { githubConfigSchema, githubEnv } from '../invokers/github/config';
import { gitlabConfigSchema, gitlabEnv } from '../invokers/gitlab/config';
import { ApiClients } from '../api/clients';
import type { RegistryOptions } from '../codec/registry';
import { csv, envBoolean, httpUrl, nonNegativeInt, positiveInt } from './fragments';

/** Defaults of the router itself; each invoker exports its own. */
export const DEFAULTS = {
  clientId: 'action-router',
  groupId: 'action-router',
  triggerTopic: 'action-triggers',
  statusTopic: 'action-run-status',
  dlqTopic: 'action-triggers.dlq',
  orgTopicTemplate: '{orgId}.runs',
  topicPartitions: 6,
  logLevel: 'info',
  httpPort: 8080,
  maxInFlightPerPartition: 512,
  maxInFlight: 2048,
  shutdownGraceMs: 15_000,
  commitIntervalMs: 500,
  sessionTimeoutMs: 30_000,
  agentSignatureToleranceSeconds: 24 * 60 * 60,
  runsDbDir: '.data',
  registryTimeoutMs: 10_000,
  apiTokenTtlSeconds: 3600,
  consoleSessionSeconds: 8 * 3600,
  agentClaimSeconds: 60,
} as const;

const saslSchema = z.strictObject({
  mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
  username: z.string().min(1),
  password: z.string().min(1),
});

export const configSchema = z.strictObject({
  kafka: z.strictObject({
    /** Empty means "start the local broker" (handled before the router starts). */
    brokers: csv.pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port'))).default([]),
    clientId: z.string().min(1).default(DEFAULTS.clientId),
    ssl: envBoolean.default(false),
    sasl: saslSchema.optional(),
  }),
  groupId: z.string().min(1).default(DEFAULTS.groupId),
  topics: z.strictObject({
    trigger: z.string().min(1).default(DEFAULTS.triggerTopic),
    status: z.string().min(1).default(DEFAULTS.statusTopic),
    dlq: z.string().min(1).default(DEFAULTS.dlqTopic),
    orgTemplate: z.string().includes('{orgId}', { message: 'must contain {orgId}' }).default(DEFAULTS.orgTopicTemplate),
    /** Create the trigger, status and dead-letter topics when missing. */
    autoCreate: envBoolean.default(true),
    partitions: positiveInt.default(DEFAULTS.topicPartitions),
  }),
  schemaRegistryUrl: httpUrl.optional(),
  schemaRegistry: z.strictObject({
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    timeoutMs: positiveInt.default(DEFAULTS.registryTimeoutMs),
    /** false: the router never registers; it uses each subject's latest schema (Confluent's auto.register.schemas=false). */
    autoRegister: envBoolean.default(true),
  }),
  actionsPath: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.logLevel),
  httpPort: z.coerce.number().int().min(0).max(65535).default(DEFAULTS.httpPort),
  window: z.strictObject({
    maxInFlightPerPartition: positiveInt.default(DEFAULTS.maxInFlightPerPartition),
    maxInFlight: positiveInt.default(DEFAULTS.maxInFlight),
    shutdownGraceMs: nonNegativeInt.default(DEFAULTS.shutdownGraceMs),
    commitIntervalMs: positiveInt.default(DEFAULTS.commitIntervalMs),
    /** How long the group waits for a silent member before moving its partitions. */
    sessionTimeoutMs: positiveInt.default(DEFAULTS.sessionTimeoutMs),
  }),
  agent: z.strictObject({
    /** How old an org-topic message's signature may be (a backlog is legitimate). */
    signatureToleranceSeconds: positiveInt.default(DEFAULTS.agentSignatureToleranceSeconds),
    /** How agent runs reach agents: the org topic, or Port's polling API (claim-pending). */
    delivery: z.enum(['kafka', 'http']).default('kafka'),
    /** How long an unacknowledged claim holds a run for one polling agent. */
    claimSeconds: positiveInt.default(DEFAULTS.agentClaimSeconds),
  }),
  store: z.strictObject({
    /** Materialize the status topic and serve the runs API. */
    enabled: envBoolean.default(true),
    /** Unset: `.data/runs-<status topic>.db`, so stores of different topics never share a file. */
    path: z.string().min(1).optional(),
  }),
  api: z.strictObject({
    clientsFile: z.string().min(1).optional(),
    /** Signs Bearer tokens; unset = derived from the clients file (shared by instances that share it). */
    tokenSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    tokenTtlSeconds: positiveInt.default(DEFAULTS.apiTokenTtlSeconds),
  }),
  console: z.strictObject({
    /** Serve the runs console at `/` (with the run store). */
    enabled: envBoolean.default(true),
    /** How long a console sign-in lasts. */
    sessionSeconds: positiveInt.default(DEFAULTS.consoleSessionSeconds),
    /** Mark the session cookie Secure (behind a TLS-terminating proxy). */
    secureCookie: envBoolean.default(false),
  }),
  signing: z.strictObject({
    defaultSecret: z.string().min(1).optional(),
    orgSecrets: z.record(z.string(), z.string().min(1)).default({}),
  }),
  invokers: z.strictObject({
    kafka: kafkaInvokerConfigSchema,
    webhook: webhookConfigSchema,
    github: githubConfigSchema,
    gitlab: gitlabConfigSchema,
  }),
});

export type Config = z.infer<typeof configSchema>;

type EnvMap = { [key: string]: string | EnvMap };

/** Which environment variable feeds each config field. */
export const ENV_MAP: EnvMap = {
  kafka: {
    brokers: 'KAFKA_BROKERS',
    clientId: 'KAFKA_CLIENT_ID',
    ssl: 'KAFKA_SSL',
    sasl: { mechanism: 'KAFKA_SASL_MECHANISM', username: 'KAFKA_SASL_USERNAME', password: 'KAFKA_SASL_PASSWORD' },
  },
  groupId: 'ROUTER_GROUP_ID',
  topics: {
    trigger: 'TRIGGER_TOPIC',
    status: 'STATUS_TOPIC',
    dlq: 'DLQ_TOPIC',
    orgTemplate: 'ORG_TOPIC_TEMPLATE',
    autoCreate: 'TOPICS_AUTO_CREATE',
    partitions: 'TOPICS_PARTITIONS',
  },
  schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
  schemaRegistry: {
    username: 'SCHEMA_REGISTRY_USERNAME',
    password: 'SCHEMA_REGISTRY_PASSWORD',
    timeoutMs: 'SCHEMA_REGISTRY_TIMEOUT_MS',
    autoRegister: 'SCHEMA_REGISTRY_AUTO_REGISTER',
  },
  actionsPath: 'ACTIONS_PATH',
  logLevel: 'LOG_LEVEL',
  httpPort: 'HTTP_PORT',
  window: {
    maxInFlightPerPartition: 'ROUTER_MAX_IN_FLIGHT_PER_PARTITION',
    maxInFlight: 'ROUTER_MAX_IN_FLIGHT',
    shutdownGraceMs: 'ROUTER_SHUTDOWN_GRACE_MS',
    commitIntervalMs: 'ROUTER_COMMIT_INTERVAL_MS',
    sessionTimeoutMs: 'ROUTER_SESSION_TIMEOUT_MS',
  },
  agent: { signatureToleranceSeconds: 'AGENT_SIGNATURE_TOLERANCE_SECONDS', delivery: 'AGENT_DELIVERY', claimSeconds: 'AGENT_CLAIM_SECONDS' },
  store: { enabled: 'RUNS_STORE', path: 'RUNS_DB_PATH' },
  api: { clientsFile: 'API_CLIENTS_FILE', tokenSecret: 'API_TOKEN_SECRET', tokenTtlSeconds: 'API_TOKEN_TTL_SECONDS' },
  console: { enabled: 'CONSOLE', sessionSeconds: 'CONSOLE_SESSION_SECONDS', secureCookie: 'CONSOLE_SECURE_COOKIE' },
  signing: { defaultSecret: 'SIGNING_SECRET', orgSecrets: 'ORG_SECRETS_FILE' },
  invokers: { kafka: kafkaInvokerEnv, webhook: webhookEnv, github: githubEnv, gitlab: gitlabEnv },
};

/** Variables whose value names a JSON file to read in its place. */
const JSON_FILE_VARIABLES = new Set(['ORG_SECRETS_FILE', 'GITLAB_TRIGGER_TOKENS_FILE']);

function collect(map: EnvMap, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, source] of Object.entries(map)) {
    if (typeof source === 'string') {
      const raw = env[source];
      if (raw === undefined || raw === '') continue;
      out[key] = JSON_FILE_VARIABLES.has(source) ? readJsonFile(source, raw) : raw;
    } else {
      const nested = collect(source, env);
      if (Object.keys(nested).length > 0 || key !== 'sasl') out[key] = nested;
    }
  }
  return out;
}

function readJsonFile(variable: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(variable, `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(variable, `${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function variableFor(path: readonly PropertyKey[]): string {
  let node: string | EnvMap = ENV_MAP;
  for (const key of path) {
    if (typeof node === 'string') break;
    const next: string | EnvMap | undefined = node[String(key)];
    if (next === undefined) break;
    node = next;
  }
  return typeof node === 'string' ? node : path.map(String).join('.') || 'configuration';
}

/** Env names of the form `<group>_<project>`: candidates for GitLab trigger tokens. */
function gitlabEnvTokens(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v && k.includes('_') && /[a-z]/.test(k)) out[k] = v;
  return out;
}

/**
 * The one place where the environment becomes configuration. Parsed once at
 * start; an invalid value throws a ConfigError naming its variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = collect(ENV_MAP, env);
  if (env.GITHUB_APP_PRIVATE_KEY_FILE && !env.GITHUB_APP_PRIVATE_KEY) {
    try {
      ((raw.invokers as Record<string, Record<string, unknown>>).github ??= {}).appPrivateKey = readFileSync(env.GITHUB_APP_PRIVATE_KEY_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError('GITHUB_APP_PRIVATE_KEY_FILE', (err as Error).message);
    }
  }
  ((raw.invokers as Record<string, Record<string, unknown>>).gitlab ??= {}).envTokens = gitlabEnvTokens(env);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = variableFor(issue.path);
    const given = env[variable];
    const shown = given === undefined || /SECRET|PASSWORD|TOKEN|KEY/.test(variable) ? '' : ` (got "${given}")`;
    throw new ConfigError(variable, `${issue.message}${shown}`);
  }
  const config = result.data;
  config.store.path ??= join(DEFAULTS.runsDbDir, `runs-${config.topics.status.replace(/[^A-Za-z0-9._-]/g, '_')}.db`);
  // A bad clients file stops the start, naming the variable.
  if (config.api.clientsFile) ApiClients.load(config.api.clientsFile);
  if (config.window.maxInFlightPerPartition > config.window.maxInFlight) {
    throw new ConfigError('ROUTER_MAX_IN_FLIGHT_PER_PARTITION', 'must not exceed ROUTER_MAX_IN_FLIGHT');
  }
  return config;
}

/** The registry client's options, or undefined without SCHEMA_REGISTRY_URL. */
export function registryOptions(config: Config): RegistryOptions | undefined {
  if (!config.schemaRegistryUrl) return undefined;
  return { url: config.schemaRegistryUrl, ...config.schemaRegistry };
}

/** The signing secret for an org: ORG_SECRETS_FILE first, then SIGNING_SECRET. */
export function secretForOrg(signing: Config['signing'], orgId: string): string | undefined {
  return signing.orgSecrets[orgId] ?? signing.defaultSecret;
}
