import pino, { Logger } from 'pino';

export type { Logger };

/**
 * Paths pino masks wherever they appear in a log object. Secrets are kept out
 * of logs by this list, not by remembering not to log them.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
  '*.signingSecret',
  '*.privateKey',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'headers["x-port-signature"]',
  'headers["X-Port-Signature"]',
  'headers["private-token"]',
  'headers["PRIVATE-TOKEN"]',
  'config.kafka.sasl',
  'config.signing',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'action-router' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
