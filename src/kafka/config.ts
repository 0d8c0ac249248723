import { z } from 'zod';
import { csv, envBoolean, httpUrl, positiveInt } from '../config/fragments';

/*
 * The Kafka connection's fragment of the configuration (brokers, TLS, SASL),
 * owned here like each invoker's: the config module composes it, and the
 * client and the security checks read its type from here.
 */

const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer', 'aws-msk-iam'] as const;

const saslSchema = z
  .strictObject({
    mechanism: z.preprocess((v) => (typeof v === 'string' ? v.toLowerCase() : v), z.enum(SASL_MECHANISMS)),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** OAUTHBEARER: a token from a file (re-read when it changes), or from an OAuth 2 token endpoint (client credentials). */
    oauthbearer: z
      .strictObject({
        tokenFile: z.string().min(1).optional(),
        tokenUrl: httpUrl.optional(),
        clientId: z.string().min(1).optional(),
        clientSecret: z.string().min(1).optional(),
        scope: z.string().min(1).optional(),
        /** SASL extensions, `key=value,key=value` (Confluent Cloud: logicalCluster, identityPoolId). */
        extensions: z
          .string()
          .transform((text, ctx) => {
            const out: Record<string, string> = {};
            for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
              const i = pair.indexOf('=');
              if (i <= 0) {
                ctx.addIssue({ code: 'custom', message: `expected key=value pairs, got "${pair}"` });
                return z.NEVER;
              }
              out[pair.slice(0, i)] = pair.slice(i + 1);
            }
            return out;
          })
          .optional(),
      })
      .default({}),
    /** aws-msk-iam: the cluster's region (default AWS_REGION). */
    awsRegion: z.string().min(1).optional(),
  })
  .superRefine((sasl, ctx) => {
    const need = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (['plain', 'scram-sha-256', 'scram-sha-512'].includes(sasl.mechanism)) {
      if (!sasl.username) need(['username'], `is required with KAFKA_SASL_MECHANISM=${sasl.mechanism}`);
      else if (!sasl.password) need(['password'], `is required with KAFKA_SASL_MECHANISM=${sasl.mechanism} (or KAFKA_SASL_PASSWORD_FILE)`);
    }
    if (sasl.mechanism === 'oauthbearer') {
      const o = sasl.oauthbearer;
      if (!o.tokenFile && !o.tokenUrl) need(['oauthbearer', 'tokenFile'], 'OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_FILE or KAFKA_SASL_OAUTHBEARER_TOKEN_URL');
      if (o.tokenFile && o.tokenUrl) need(['oauthbearer', 'tokenFile'], 'set KAFKA_SASL_OAUTHBEARER_TOKEN_FILE or KAFKA_SASL_OAUTHBEARER_TOKEN_URL, not both');
      if (o.tokenUrl && !o.clientId) need(['oauthbearer', 'clientId'], 'is required with KAFKA_SASL_OAUTHBEARER_TOKEN_URL');
      if (o.tokenUrl && !o.clientSecret) need(['oauthbearer', 'clientSecret'], 'is required with KAFKA_SASL_OAUTHBEARER_TOKEN_URL');
    }
    if (sasl.mechanism === 'aws-msk-iam' && !sasl.awsRegion) need(['awsRegion'], 'aws-msk-iam needs the cluster\'s region (KAFKA_SASL_AWS_REGION or AWS_REGION)');
  });

const tlsSchema = z.strictObject({
  /** PEM file of the CA(s) that signed the brokers' certificates (a private CA: Strimzi, Aiven, Redpanda). */
  caFile: z.string().min(1).optional(),
  /** Client certificate and key (PEM) for mutual TLS. */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  keyPassword: z.string().min(1).optional(),
  rejectUnauthorized: envBoolean.default(true),
  /** The name to check the brokers' certificates against, when it is not the host in KAFKA_BROKERS. */
  servername: z.string().min(1).optional(),
});

/** Brokers, TLS and SASL: how every client of this process connects. */
export const kafkaConnectionSchema = z.strictObject({
  /** Empty means "start the local broker" (handled before the router starts). */
  brokers: csv.pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port'))).default([]),
  clientId: z.string().min(1).default('action-router'),
  /** TLS to the brokers; on by itself when any KAFKA_SSL_*_FILE is set. */
  ssl: envBoolean.default(false),
  tls: tlsSchema.default({ rejectUnauthorized: true }),
  sasl: saslSchema.optional(),
  /** How long `start` waits for an unreachable broker before it gives up (TLS and authentication failures end it at once). */
  startTimeoutMs: positiveInt.default(30_000),
});

export type KafkaConnectionConfig = z.infer<typeof kafkaConnectionSchema>;

/** Which environment variable feeds each field. */
export const kafkaConnectionEnv = {
  brokers: 'KAFKA_BROKERS',
  clientId: 'KAFKA_CLIENT_ID',
  ssl: 'KAFKA_SSL',
  tls: {
    caFile: 'KAFKA_SSL_CA_FILE',
    certFile: 'KAFKA_SSL_CERT_FILE',
    keyFile: 'KAFKA_SSL_KEY_FILE',
    keyPassword: 'KAFKA_SSL_KEY_PASSWORD',
    rejectUnauthorized: 'KAFKA_SSL_REJECT_UNAUTHORIZED',
    servername: 'KAFKA_SSL_SERVERNAME',
  },
  sasl: {
    mechanism: 'KAFKA_SASL_MECHANISM',
    username: 'KAFKA_SASL_USERNAME',
    password: 'KAFKA_SASL_PASSWORD',
    oauthbearer: {
      tokenFile: 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
      tokenUrl: 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL',
      clientId: 'KAFKA_SASL_OAUTHBEARER_CLIENT_ID',
      clientSecret: 'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET',
      scope: 'KAFKA_SASL_OAUTHBEARER_SCOPE',
      extensions: 'KAFKA_SASL_OAUTHBEARER_EXTENSIONS',
    },
    awsRegion: 'KAFKA_SASL_AWS_REGION',
  },
  startTimeoutMs: 'KAFKA_START_TIMEOUT_MS',
};
