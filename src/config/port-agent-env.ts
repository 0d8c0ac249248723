import { ConfigError } from '../errors';

/*
 * Port's execution agent's settings (port-labs/port-agent, app/core/config.py)
 * read as aliases of ours, so that `action-router agent` starts with the
 * environment Port's agent ran with. Where both names are set, ours wins.
 * The README's table is this list.
 */

type Convert = (value: string) => string | undefined;

export interface PortAgentAlias {
  port: string;
  /** Our variable it sets; null: accepted and not needed here. */
  ours: string | null;
  convert?: Convert;
}

const bool: Convert = (v) => {
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on', 't', 'y'].includes(t)) return 'true';
  if (['0', 'false', 'no', 'off', 'f', 'n'].includes(t)) return 'false';
  throw new Error('expected true or false');
};

const milliseconds: Convert = (v) => {
  const seconds = Number(v);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('expected a positive number of seconds');
  return String(Math.max(1, Math.round(seconds * 1000)));
};

export const PORT_AGENT_ALIASES: readonly PortAgentAlias[] = [
  { port: 'PORT_ORG_ID', ours: 'AGENT_ORG_ID' },
  { port: 'PORT_CLIENT_SECRET', ours: 'SIGNING_SECRET' },
  { port: 'PORT_CLIENT_ID', ours: null },
  { port: 'PORT_API_BASE_URL', ours: null },
  { port: 'USING_LOCAL_PORT_INSTANCE', ours: null },
  {
    port: 'STREAMER_NAME',
    ours: null,
    convert: (v) => {
      if (v.toUpperCase() === 'KAFKA') return undefined;
      if (v.toUpperCase() === 'POLLING') throw new Error('POLLING is not supported by action-router agent, which reads the org topic (KAFKA); Port\'s own agent can poll this router instead (POST /v1/actions/runs/claim-pending, AGENT_DELIVERY=http)');
      throw new Error('expected KAFKA or POLLING');
    },
  },
  { port: 'KAFKA_CONSUMER_BOOTSTRAP_SERVERS', ours: 'KAFKA_BROKERS' },
  {
    port: 'KAFKA_CONSUMER_SECURITY_PROTOCOL',
    ours: 'KAFKA_SSL',
    convert: (v) => {
      const p = v.toUpperCase();
      if (p === 'SSL' || p === 'SASL_SSL') return 'true';
      if (p === 'PLAINTEXT' || p === 'SASL_PLAINTEXT') return 'false';
      throw new Error('expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL');
    },
  },
  {
    port: 'KAFKA_CONSUMER_AUTHENTICATION_MECHANISM',
    ours: 'KAFKA_SASL_MECHANISM',
    convert: (v) => {
      const m = v.toLowerCase();
      if (m === 'none') return undefined;
      if (['plain', 'scram-sha-256', 'scram-sha-512'].includes(m)) return m;
      throw new Error('expected none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512');
    },
  },
  { port: 'KAFKA_CONSUMER_SESSION_TIMEOUT_MS', ours: 'ROUTER_SESSION_TIMEOUT_MS' },
  { port: 'KAFKA_CONSUMER_AUTO_OFFSET_RESET', ours: 'AGENT_OFFSET_RESET' },
  { port: 'KAFKA_CONSUMER_GROUP_ID', ours: 'AGENT_GROUP_ID' },
  { port: 'KAFKA_RUNS_TOPIC', ours: 'AGENT_TOPIC' },
  { port: 'WEBHOOK_INVOKER_TIMEOUT', ours: 'WEBHOOK_TIMEOUT_MS', convert: milliseconds },
  { port: 'WEBHOOK_VERIFY_SSL', ours: 'WEBHOOK_VERIFY_SSL', convert: bool },
  { port: 'DETAILED_LOGGING', ours: 'DETAILED_LOGGING', convert: bool },
  { port: 'CONTROL_THE_PAYLOAD_CONFIG_PATH', ours: 'CONTROL_THE_PAYLOAD_CONFIG_PATH' },
  { port: 'POLLING_INTERVAL_SECONDS', ours: null },
  { port: 'POLLING_RUNS_BATCH_SIZE', ours: null },
  { port: 'POLLING_MAX_BACKOFF_SECONDS', ours: null },
  { port: 'POLLING_INITIAL_BACKOFF_SECONDS', ours: null },
  { port: 'POLLING_BACKOFF_FACTOR', ours: null },
  { port: 'POLLING_BACKOFF_JITTER_FACTOR', ours: null },
  { port: 'POLLING_MAX_FAILURE_DURATION_SECONDS', ours: null },
];

/**
 * The environment with Port's agent's variables turned into ours (ours
 * win where both are set). A value that cannot be turned stops the start,
 * naming Port's variable.
 */
export function withPortAgentAliases(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const alias of PORT_AGENT_ALIASES) {
    const given = env[alias.port];
    if (given === undefined || given === '') continue;
    let value: string | undefined;
    try {
      value = alias.convert ? alias.convert(given) : given;
    } catch (err) {
      throw new ConfigError(alias.port, (err as Error).message);
    }
    if (alias.ours === null || alias.ours === alias.port || value === undefined) {
      if (alias.ours === alias.port && value !== undefined) out[alias.port] = value;
      continue;
    }
    if (env[alias.ours] === undefined || env[alias.ours] === '') out[alias.ours] = value;
  }
  return out;
}
