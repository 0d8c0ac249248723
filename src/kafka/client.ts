import { Kafka, KafkaConfig, logLevel as KafkaLogLevel, LogEntry } from 'kafkajs';
import type { Logger } from '../log';
import type { KafkaConnectionConfig } from './config';
import { kafkaSaslOptions, kafkaTlsOptions } from './security';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [KafkaLogLevel.ERROR]: 'error',
  [KafkaLogLevel.WARN]: 'warn',
  [KafkaLogLevel.INFO]: 'info',
  [KafkaLogLevel.DEBUG]: 'debug',
};

/** What a kafkajs log entry says when the cluster refused this client's credentials or permissions. */
const REFUSED = /SASL_AUTHENTICATION_FAILED|SASLAuthentication|authentication failed|_AUTHORIZATION_FAILED|not authorized/i;

/** Whether a kafkajs log entry reports refused credentials or permissions. */
export function isKafkaAuthFailure(entry: { message?: unknown; error?: unknown; type?: unknown }): boolean {
  return [entry.message, entry.error, entry.type].some((v) => typeof v === 'string' && REFUSED.test(v));
}

/**
 * A kafkajs client whose logs go through pino (kafkajs INFO is chatty:
 * debug). `onAuthFailure` hears of each warning or error that says the
 * cluster refused the credentials or an ACL refused an operation.
 */
export function createKafka(config: KafkaConnectionConfig, logger: Logger, clientIdSuffix = '', overrides: Partial<KafkaConfig> = {}, onAuthFailure?: () => void): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  const options: KafkaConfig = {
    clientId: config.clientId + clientIdSuffix,
    brokers: config.brokers,
    ssl: kafkaTlsOptions(config) ?? false,
    sasl: kafkaSaslOptions(config),
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    // Retries are bounded per request; the router's own loops retry outcomes
    // for as long as it runs, so a broker outage never drops a message.
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 10_000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // Said at every start of an idempotent producer whose retries are bounded: ours are, on purpose (see app.ts).
        if (message === 'Limiting retries for the idempotent producer may invalidate EoS guarantees') return;
        const pinoLevel = LEVELS[level] === 'info' ? 'debug' : LEVELS[level] ?? 'debug';
        log[pinoLevel](rest, message);
        if (onAuthFailure && level <= KafkaLogLevel.WARN && isKafkaAuthFailure(entry)) onAuthFailure();
      },
  };
  return new Kafka({ ...options, ...overrides });
}
