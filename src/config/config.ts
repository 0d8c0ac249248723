import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { secretInputKey } from '../model/secret-input';
import { withPortAgentAliases } from './port-agent-env';
import { ConfigError } from '../errors';
import { kafkaInvokerConfigSchema, kafkaInvokerEnv } from '../invokers/kafka/config';
import { webhookConfigSchema, webhookEnv } from '../invokers/webhook/config';
import { githubConfigSchema, githubEnv } from '../invokers/github/config';
import { gitlabConfigSchema, gitlabEnv } from '../invokers/gitlab/config';
import type { RegistryOptions } from '../codec/registry';
import { envBoolean, hostList, httpUrl, nonNegativeInt, positiveInt, trustProxy } from './fragments';
import { checkKafkaSecurity, pemCertificates } from '../kafka/security';
import { EnvMap, collect, gitlabEnvTokens, variableFor, withSecretFiles } from './env';
import { kafkaConnectionEnv, kafkaConnectionSchema } from '../kafka/config';

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
  kafkaStartTimeoutMs: 30_000,
  agentClaimSeconds: 60,
  runsApplyTimeoutSeconds: 10,
  runsWriterNice: 10,
  agentLedgerRetentionHours: 7 * 24,
} as const;

/** A duration: seconds, or a number with s, m, h or d (`90s`, `30m`, `2h`, `7d`); in milliseconds. */
const duration = z.string().transform((text, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$/i.exec(text);
  const ms = m ? Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's').toLowerCase() as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!Number.isFinite(ms) || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 3600, 90s, 30m, 2h or 7d' });
    return z.NEVER;
  }
  return ms;
});

export const configSchema = z.strictObject({
  kafka: kafkaConnectionSchema,
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
    /** PEM file of the CA that signed the registry's certificate (https with a private CA). */
    caFile: z.string().min(1).optional(),
    /** false: the router never registers; it uses each subject's latest schema (Confluent's auto.register.schemas=false). */
    autoRegister: envBoolean.default(true),
  }),
  actionsPath: z.string().min(1).optional(),
  // Port's agent's levels (INFO, WARNING, CRITICAL) read as ours.
  logLevel: z
    .preprocess((v) => (typeof v === 'string' ? ({ warning: 'warn', critical: 'fatal' } as Record<string, string>)[v.toLowerCase()] ?? v.toLowerCase() : v), z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .default(DEFAULTS.logLevel),
  httpPort: z.coerce.number().int().min(0).max(65535).default(DEFAULTS.httpPort),
  /** Proxies whose X-Forwarded-For (and -Proto, -Host) name the client: the address sign-in limits count. */
  trustProxy: trustProxy.default(false),
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
    /** The agent's topic (Port's KAFKA_RUNS_TOPIC); default: TOPIC_ORG_TEMPLATE for its org. */
    topic: z.string().min(1).optional(),
    /** The agent's consumer group (Port's KAFKA_CONSUMER_GROUP_ID); default: ROUTER_GROUP_ID + "-agent". */
    groupId: z.string().min(1).optional(),
    /** Where a new agent group starts: the topic's beginning, or its end. */
    offsetReset: z.enum(['earliest', 'latest']).default('earliest'),
    /** Port's payload mapping file; default: the agent's built-in mapping. */
    mappingPath: z.string().min(1).optional(),
    /** A failed call's summary carries the response's text (Port's agent's DETAILED_LOGGING, on by default). */
    detailedLogging: envBoolean.default(true),
    /** Check the TLS certificates of the agent's requests (Port's WEBHOOK_VERIFY_SSL). */
    verifyTls: envBoolean.default(true),
    /** The agent's record of its own calls (SQLite); default: `<DATA_DIR>/agent-calls-<org>.db` (agent/agent.ts). */
    ledgerPath: z.string().min(1).optional(),
    /** How long a call stays in the agent's ledger, counted back from its latest call. */
    ledgerRetentionHours: positiveInt.default(DEFAULTS.agentLedgerRetentionHours),
  }),
  /** jq in payload mappings and templates: time and output budget of one evaluation. */
  jq: z.strictObject({
    timeoutMs: positiveInt.default(1_000),
    maxOutputChars: positiveInt.default(1024 * 1024),
  }),
  /** Where this instance keeps local state (the run store's file unless RUNS_DB_PATH names one; an agent's ledger unless AGENT_LEDGER_PATH does). */
  dataDir: z.string().min(1).default(DEFAULTS.runsDbDir),
  store: z.strictObject({
    /** Materialize the status topic and serve the runs API. */
    enabled: envBoolean.default(true),
    /** Unset: `<DATA_DIR>/runs-<status topic>.db`, so stores of different topics never share a file. */
    path: z.string().min(1).optional(),
    /** How long an API write (and a polling claim) waits for the store to apply it before answering 503 (claims: handed to nobody). */
    applyTimeoutSeconds: positiveInt.max(300).default(DEFAULTS.runsApplyTimeoutSeconds),
    /** The writer thread's CPU priority (Linux nice, 0–19): above 0, routing gets a shared core first and the store catches up after. */
    writerNice: nonNegativeInt.max(19).default(DEFAULTS.runsWriterNice),
  }),
  api: z.strictObject({
    clientsFile: z.string().min(1).optional(),
    /** Signs Bearer tokens; unset = derived from the clients file (shared by instances that share it). */
    tokenSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    tokenTtlSeconds: positiveInt.default(DEFAULTS.apiTokenTtlSeconds),
  }),
  approvals: z.strictObject({
    /** Encrypts waiting runs' events on the status topic (AES-256-GCM); every router of a deployment shares it. */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** A run not decided this long after it was triggered ends FAILURE; unset: no limit. */
    timeoutMs: duration.optional(),
  }),
  console: z.strictObject({
    /** Serve the runs console at `/` (with the run store). */
    enabled: envBoolean.default(true),
    /** How long a console sign-in lasts. */
    sessionSeconds: positiveInt.default(DEFAULTS.consoleSessionSeconds),
    /** Where sign-outs go, so that every instance ends the session; unset: `<STATUS_TOPIC>.sign-outs`. */
    signOutTopic: z.string().min(1).optional(),
    /** The Host names the HTTP server answers as (a DNS-rebinding page names its own); empty: any. Probes and /metrics answer any. */
    allowedHosts: hostList.default([]),
    /** Mark the session cookie Secure (behind a TLS-terminating proxy). */
    secureCookie: envBoolean.default(false),
    /** Live-feed streams open at once: in all, per org, per API client. */
    liveMaxStreams: positiveInt.default(500),
    liveMaxPerOrg: positiveInt.default(100),
    liveMaxPerClient: positiveInt.default(20),
  }),
  /** People sign in to the console through an OpenID Connect provider (all unset: client sign-in only). */
  oidc: z.strictObject({
    /** The provider's issuer; its discovery document is read at start. */
    issuerUrl: httpUrl.optional(),
    clientId: z.string().min(1).optional(),
    clientSecret: z.string().min(1).optional(),
    /** Space-separated; `openid` is always asked for. */
    scopes: z.string().min(1).default('openid email profile'),
    /** The groups → org and roles map (JSON); re-read when it changes. */
    accessFile: z.string().min(1).optional(),
    /** The ID token (or UserInfo) claim holding the person's groups. */
    groupsClaim: z.string().min(1).default('groups'),
    /** What the sign-in button says ("Sign in with …"); unset: the issuer's host. */
    providerName: z.string().min(1).max(64).optional(),
    /** How often a person's groups are checked again with the refresh token. */
    refreshSeconds: positiveInt.default(300),
    /** The longest a person's session lives, whatever the provider says; unset: CONSOLE_SESSION_SECONDS. */
    sessionMaxSeconds: positiveInt.optional(),
    /** How long the start waits for the provider's discovery document. */
    startTimeoutSeconds: positiveInt.default(30),
  }),
  /** The console's address as browsers reach it (the redirect URI is <PUBLIC_URL>/login/oidc/callback). */
  publicUrl: httpUrl.optional(),
  /** false: the sign-in page offers only the provider (API clients keep their Bearer tokens). */
  clientSignIn: envBoolean.default(true),
  /** No run invoked twice: the store (or an agent's ledger) is read before each call, and calls are recorded STARTED/ENDED. */
  noRepeat: envBoolean.default(true),
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

type ParsedConfig = z.infer<typeof configSchema>;

/** The configuration as loadConfig returns it: complete, and frozen. */
export type Config = Omit<ParsedConfig, 'console' | 'store'> & {
  console: ParsedConfig['console'] & { signOutTopic: string };
  store: ParsedConfig['store'] & { path: string };
};

/** Which environment variable feeds each config field. */
export const ENV_MAP: EnvMap = {
  kafka: kafkaConnectionEnv,
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
    caFile: 'SCHEMA_REGISTRY_CA_FILE',
    autoRegister: 'SCHEMA_REGISTRY_AUTO_REGISTER',
  },
  actionsPath: 'ACTIONS_PATH',
  logLevel: 'LOG_LEVEL',
  httpPort: 'HTTP_PORT',
  trustProxy: 'TRUST_PROXY',
  window: {
    maxInFlightPerPartition: 'ROUTER_MAX_IN_FLIGHT_PER_PARTITION',
    maxInFlight: 'ROUTER_MAX_IN_FLIGHT',
    shutdownGraceMs: 'ROUTER_SHUTDOWN_GRACE_MS',
    commitIntervalMs: 'ROUTER_COMMIT_INTERVAL_MS',
    sessionTimeoutMs: 'ROUTER_SESSION_TIMEOUT_MS',
  },
  noRepeat: 'ROUTER_NO_REPEAT',
  agent: {
    signatureToleranceSeconds: 'AGENT_SIGNATURE_TOLERANCE_SECONDS',
    delivery: 'AGENT_DELIVERY',
    claimSeconds: 'AGENT_CLAIM_SECONDS',
    topic: 'AGENT_TOPIC',
    groupId: 'AGENT_GROUP_ID',
    offsetReset: 'AGENT_OFFSET_RESET',
    mappingPath: 'CONTROL_THE_PAYLOAD_CONFIG_PATH',
    detailedLogging: 'DETAILED_LOGGING',
    verifyTls: 'WEBHOOK_VERIFY_SSL',
    ledgerPath: 'AGENT_LEDGER_PATH',
    ledgerRetentionHours: 'AGENT_LEDGER_RETENTION_HOURS',
  },
  jq: { timeoutMs: 'JQ_TIMEOUT_MS', maxOutputChars: 'JQ_MAX_OUTPUT_CHARS' },
  dataDir: 'DATA_DIR',
  store: { enabled: 'RUNS_STORE', path: 'RUNS_DB_PATH', applyTimeoutSeconds: 'RUNS_APPLY_TIMEOUT_SECONDS', writerNice: 'RUNS_WRITER_NICE' },
  api: { clientsFile: 'API_CLIENTS_FILE', tokenSecret: 'API_TOKEN_SECRET', tokenTtlSeconds: 'API_TOKEN_TTL_SECONDS' },
  approvals: { secret: 'APPROVAL_SECRET', timeoutMs: 'APPROVAL_TIMEOUT' },
  console: {
    enabled: 'CONSOLE',
    sessionSeconds: 'CONSOLE_SESSION_SECONDS',
    secureCookie: 'CONSOLE_SECURE_COOKIE',
    allowedHosts: 'CONSOLE_ALLOWED_HOSTS',
    signOutTopic: 'CONSOLE_SIGN_OUT_TOPIC',
    liveMaxStreams: 'CONSOLE_LIVE_MAX_STREAMS',
    liveMaxPerOrg: 'CONSOLE_LIVE_MAX_PER_ORG',
    liveMaxPerClient: 'CONSOLE_LIVE_MAX_PER_CLIENT',
  },
  oidc: {
    issuerUrl: 'OIDC_ISSUER_URL',
    clientId: 'OIDC_CLIENT_ID',
    clientSecret: 'OIDC_CLIENT_SECRET',
    scopes: 'OIDC_SCOPES',
    accessFile: 'OIDC_ACCESS_FILE',
    groupsClaim: 'OIDC_GROUPS_CLAIM',
    providerName: 'OIDC_PROVIDER_NAME',
    refreshSeconds: 'OIDC_REFRESH_SECONDS',
    sessionMaxSeconds: 'OIDC_SESSION_MAX_SECONDS',
    startTimeoutSeconds: 'OIDC_START_TIMEOUT_SECONDS',
  },
  publicUrl: 'PUBLIC_URL',
  clientSignIn: 'CONSOLE_CLIENT_SIGNIN',
  signing: { defaultSecret: 'SIGNING_SECRET', orgSecrets: 'ORG_SECRETS_FILE' },
  invokers: { kafka: kafkaInvokerEnv, webhook: webhookEnv, github: githubEnv, gitlab: gitlabEnv },
};

/**
 * The one place where the environment becomes configuration. Parsed once at
 * start; an invalid value throws a ConfigError naming its variable.
 */
export function loadConfig(given: NodeJS.ProcessEnv = process.env): Config {
  const env = withPortAgentAliases(withSecretFiles(given));
  const raw = collect(ENV_MAP, env);
  const sasl = (raw.kafka as { sasl?: Record<string, unknown> }).sasl;
  if (sasl && sasl.awsRegion === undefined && String(sasl.mechanism).toLowerCase() === 'aws-msk-iam') {
    sasl.awsRegion = env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
  }
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
    const variable = variableFor(ENV_MAP, issue.path);
    const given = env[variable];
    const shown = given === undefined || /SECRET|PASSWORD|TOKEN|KEY/.test(variable) ? '' : ` (got "${given}")`;
    throw new ConfigError(variable, `${issue.message}${shown}`);
  }
  const parsed = result.data;
  checkKafkaSecurity(parsed.kafka);
  if (parsed.schemaRegistry.caFile) pemCertificates('SCHEMA_REGISTRY_CA_FILE', parsed.schemaRegistry.caFile);
  checkOidc(parsed);
  if (parsed.window.maxInFlightPerPartition > parsed.window.maxInFlight) {
    throw new ConfigError('ROUTER_MAX_IN_FLIGHT_PER_PARTITION', 'must not exceed ROUTER_MAX_IN_FLIGHT');
  }
  // Defaults that depend on other values are filled here, once; nothing changes the result afterwards.
  return deepFreeze({
    ...parsed,
    console: { ...parsed.console, signOutTopic: parsed.console.signOutTopic ?? `${parsed.topics.status}.sign-outs` },
    store: { ...parsed.store, path: parsed.store.path ?? join(parsed.dataDir, `runs-${parsed.topics.status.replace(/[^A-Za-z0-9._-]/g, '_')}.db`) },
  });
}

/** OpenID Connect needs all of its settings or none; the first one missing is named. */
function checkOidc(parsed: ParsedConfig): void {
  const o = parsed.oidc;
  if (!o.issuerUrl && !o.clientId && !o.clientSecret && !o.accessFile) {
    if (!parsed.clientSignIn) throw new ConfigError('CONSOLE_CLIENT_SIGNIN', 'false needs OIDC_ISSUER_URL: nobody could sign in to the console');
    return;
  }
  const needed: [string, unknown][] = [
    ['OIDC_ISSUER_URL', o.issuerUrl],
    ['OIDC_CLIENT_ID', o.clientId],
    ['OIDC_CLIENT_SECRET', o.clientSecret],
    ['OIDC_ACCESS_FILE', o.accessFile],
    ['PUBLIC_URL', parsed.publicUrl],
  ];
  for (const [name, value] of needed) if (!value) throw new ConfigError(name, 'is needed when OpenID Connect sign-in is configured (OIDC_*)');
  const issuer = new URL(o.issuerUrl!);
  if (issuer.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(issuer.hostname)) {
    throw new ConfigError('OIDC_ISSUER_URL', 'must be https (plain http is allowed for localhost only)');
  }
  if (!o.scopes.split(/\s+/).includes('openid')) throw new ConfigError('OIDC_SCOPES', 'must include openid');
}

/** Freezes `value` and everything it holds: the configuration is read, never written. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The registry client's options, or undefined without SCHEMA_REGISTRY_URL. */
export function registryOptions(config: Config): RegistryOptions | undefined {
  if (!config.schemaRegistryUrl) return undefined;
  const { caFile, ...rest } = config.schemaRegistry;
  return { url: config.schemaRegistryUrl, ...rest, ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}) };
}

/** The signing secret for an org: ORG_SECRETS_FILE first, then SIGNING_SECRET. */
export function secretForOrg(signing: Config['signing'], orgId: string): string | undefined {
  return signing.orgSecrets[orgId] ?? signing.defaultSecret;
}

/** The key of an org's secret inputs: the first 32 bytes of its signing secret (null: none, or shorter). */
export function secretInputKeyFor(signing: Config['signing'], orgId: string): Buffer | null {
  const secret = secretForOrg(signing, orgId);
  return secret === undefined ? null : secretInputKey(secret);
}
