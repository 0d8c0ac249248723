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

/**
 * Errors as pino writes them, less what carries a request's bytes: Node's
 * HTTP parse errors hold the raw packet (`rawPacket`), Bearer tokens,
 * secrets and cookies included.
 */
function errorWithoutBytes(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (out && typeof out === 'object') {
    for (const [key, value] of Object.entries(out)) if (key === 'rawPacket' || Buffer.isBuffer(value) || value instanceof Uint8Array) delete out[key];
  }
  return out;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'action-router' },
    serializers: { err: errorWithoutBytes },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * A child logger made on first use: most runs log nothing, and pino's
 * child() (bindings serialised, redaction set up) is not free on a path
 * taken thousands of times a second.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy(parent, {
    get(target, prop) {
      // Level checks need no child (and must not touch the proxy again).
      if (prop === 'isLevelEnabled') return target.isLevelEnabled.bind(target);
      if (prop === 'level') return target.level;
      child ??= target.child(bindings);
      const value = Reflect.get(child, prop, child);
      return typeof value === 'function' ? value.bind(child) : value;
    },
  });
}
