import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { OauthbearerProviderResponse, SASLOptions } from 'kafkajs';
import type { KafkaConnectionConfig } from './config';
import { ConfigError } from '../errors';

type KafkaConfig = KafkaConnectionConfig;

function readFile(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(variable, `cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The certificates of a PEM file (a CA bundle may hold several). */
export function pemCertificates(variable: string, path: string): X509Certificate[] {
  const text = readFile(variable, path);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError(variable, `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((pem) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new ConfigError(variable, `${path}: a certificate does not parse: ${(err as Error).message}`);
    }
  });
}

/**
 * The TLS options for the brokers (kafkajs passes them to tls.connect), or
 * undefined without TLS. Reads and checks the files: a CA that is no
 * certificate, a key that the passphrase does not open, or a key that is
 * not the certificate's stops the start, naming the variable.
 */
export function kafkaTlsOptions(kafka: KafkaConfig): ConnectionOptions | undefined {
  if (!kafka.ssl) return undefined;
  const t = kafka.tls;
  const options: ConnectionOptions = { rejectUnauthorized: t.rejectUnauthorized };
  if (t.servername) options.servername = t.servername;
  if (t.caFile) {
    pemCertificates('KAFKA_SSL_CA_FILE', t.caFile);
    options.ca = readFile('KAFKA_SSL_CA_FILE', t.caFile);
  }
  if (t.certFile && t.keyFile) {
    const [cert] = pemCertificates('KAFKA_SSL_CERT_FILE', t.certFile);
    const keyText = readFile('KAFKA_SSL_KEY_FILE', t.keyFile);
    let key;
    try {
      key = createPrivateKey({ key: keyText, passphrase: t.keyPassword });
    } catch (err) {
      const encrypted = /ENCRYPTED/.test(keyText);
      throw new ConfigError(
        encrypted ? 'KAFKA_SSL_KEY_PASSWORD' : 'KAFKA_SSL_KEY_FILE',
        encrypted
          ? `the key in ${t.keyFile} is encrypted and ${t.keyPassword ? 'KAFKA_SSL_KEY_PASSWORD does not open it' : 'KAFKA_SSL_KEY_PASSWORD is unset'}`
          : `${t.keyFile} holds no usable private key: ${(err as Error).message}`,
      );
    }
    if (!cert!.checkPrivateKey(key)) throw new ConfigError('KAFKA_SSL_KEY_FILE', `the key in ${t.keyFile} is not the key of the certificate in ${t.certFile}`);
    options.cert = readFile('KAFKA_SSL_CERT_FILE', t.certFile);
    options.key = keyText;
    if (t.keyPassword) options.passphrase = t.keyPassword;
  }
  return options;
}

/**
 * Settles what the TLS variables imply, and checks them: a CA or client
 * certificate turns TLS on (MSK IAM too: it is TLS only), a certificate
 * needs its key.
 */
export function checkKafkaSecurity(kafka: KafkaConfig): void {
  const t = kafka.tls;
  if (Boolean(t.certFile) !== Boolean(t.keyFile)) {
    throw new ConfigError(t.certFile ? 'KAFKA_SSL_KEY_FILE' : 'KAFKA_SSL_CERT_FILE', 'mutual TLS needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE');
  }
  if (t.caFile || t.certFile || kafka.sasl?.mechanism === 'aws-msk-iam') kafka.ssl = true;
  kafkaTlsOptions(kafka);
}

/** What a person should know about the TLS files (a certificate that expired or is about to). */
export function certificateWarnings(kafka: KafkaConfig, now = Date.now()): string[] {
  const warnings: string[] = [];
  const check = (variable: string, path: string | undefined) => {
    if (!path) return;
    for (const cert of pemCertificates(variable, path)) {
      const ends = Date.parse(cert.validTo);
      if (ends < now) warnings.push(`${variable}: the certificate "${cert.subject.replace(/\n/g, ', ')}" expired on ${new Date(ends).toISOString()}`);
      else if (ends - now < 14 * 86_400_000) warnings.push(`${variable}: the certificate "${cert.subject.replace(/\n/g, ', ')}" expires on ${new Date(ends).toISOString()}`);
    }
  };
  if (kafka.ssl) {
    check('KAFKA_SSL_CA_FILE', kafka.tls.caFile);
    check('KAFKA_SSL_CERT_FILE', kafka.tls.certFile);
  }
  return warnings;
}

/** Tokens are renewed this long before they expire. */
const RENEW_EARLY_MS = 60_000;

type TokenProvider = () => Promise<OauthbearerProviderResponse>;

/** Caches a token until shortly before it expires; concurrent callers share one fetch. */
function cached(fetchToken: () => Promise<{ value: string; expiresAt: number }>, extensions?: Record<string, string>): TokenProvider {
  let current: { value: string; expiresAt: number } | null = null;
  let pending: Promise<{ value: string; expiresAt: number }> | null = null;
  return async () => {
    if (!current || Date.now() > current.expiresAt - RENEW_EARLY_MS) {
      pending ??= fetchToken().finally(() => (pending = null));
      current = await pending;
    }
    return extensions ? ({ value: current.value, extensions } as OauthbearerProviderResponse) : { value: current.value };
  };
}

/** The `exp` of a JWT, or a minute from now when the token is not one. */
function jwtExpiry(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    if (typeof payload.exp === 'number') return payload.exp * 1000;
  } catch {
    // not a JWT
  }
  return Date.now() + 2 * RENEW_EARLY_MS;
}

/** OAUTHBEARER from a file another process keeps fresh (a sidecar, a mounted secret). */
function tokenFromFile(path: string): () => Promise<{ value: string; expiresAt: number }> {
  return async () => {
    const value = readFileSync(path, 'utf8').trim();
    if (!value) throw new Error(`KAFKA_SASL_OAUTHBEARER_TOKEN_FILE ${path} is empty`);
    return { value, expiresAt: jwtExpiry(value) };
  };
}

/** OAUTHBEARER from an OAuth 2 token endpoint with the client-credentials grant (Confluent Cloud, Keycloak, Okta, Entra). */
function tokenFromEndpoint(o: NonNullable<KafkaConfig['sasl']>['oauthbearer']): () => Promise<{ value: string; expiresAt: number }> {
  return async () => {
    const body = new URLSearchParams({ grant_type: 'client_credentials', ...(o.scope ? { scope: o.scope } : {}) });
    const basic = Buffer.from(`${encodeURIComponent(o.clientId!)}:${encodeURIComponent(o.clientSecret!)}`).toString('base64');
    const res = await fetch(o.tokenUrl!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: `Basic ${basic}` },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`the token endpoint ${o.tokenUrl} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    const json = JSON.parse(text) as { access_token?: string; expires_in?: number };
    if (!json.access_token) throw new Error(`the token endpoint ${o.tokenUrl} answered without access_token`);
    const expiresAt = typeof json.expires_in === 'number' ? Date.now() + json.expires_in * 1000 : jwtExpiry(json.access_token);
    return { value: json.access_token, expiresAt };
  };
}

/** MSK IAM: AWS's own signer (aws-msk-iam-sasl-signer-js) with the default credential chain. */
function tokenFromAws(region: string): () => Promise<{ value: string; expiresAt: number }> {
  return async () => {
    const { generateAuthToken } = await import('aws-msk-iam-sasl-signer-js');
    const { token, expiryTime } = await generateAuthToken({ region });
    return { value: token, expiresAt: expiryTime };
  };
}

/** kafkajs's SASL options for the configured mechanism, or undefined. */
/**
 * One token provider per set of settings in this thread: every Kafka client
 * of the process (the router's, the start check's) shares its token, so an
 * endpoint is asked once, not once per client.
 */
const providers = new Map<string, TokenProvider>();

function shared(key: object, make: () => TokenProvider): TokenProvider {
  const id = JSON.stringify(key);
  let provider = providers.get(id);
  if (!provider) providers.set(id, (provider = make()));
  return provider;
}

export function kafkaSaslOptions(kafka: KafkaConfig): SASLOptions | undefined {
  const sasl = kafka.sasl;
  if (!sasl) return undefined;
  switch (sasl.mechanism) {
    case 'plain':
    case 'scram-sha-256':
    case 'scram-sha-512':
      return { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! } as SASLOptions;
    case 'oauthbearer': {
      const o = sasl.oauthbearer;
      return { mechanism: 'oauthbearer', oauthBearerProvider: shared(o, () => cached(o.tokenFile ? tokenFromFile(o.tokenFile) : tokenFromEndpoint(o), o.extensions)) };
    }
    case 'aws-msk-iam':
      return { mechanism: 'oauthbearer', oauthBearerProvider: shared({ aws: sasl.awsRegion }, () => cached(tokenFromAws(sasl.awsRegion!))) };
  }
}

/** How the connection authenticates, for messages ("SCRAM-SHA-512 as alice"). */
export function describeAuth(kafka: KafkaConfig): string {
  const sasl = kafka.sasl;
  const transport = kafka.ssl ? (kafka.tls.certFile ? 'mutual TLS' : 'TLS') : 'plaintext';
  if (!sasl) return transport;
  const who = sasl.username ? ` as ${sasl.username}` : '';
  const mechanism = sasl.mechanism === 'aws-msk-iam' ? 'AWS MSK IAM' : sasl.mechanism.toUpperCase();
  return `SASL ${mechanism}${who} over ${transport}`;
}
