import https from 'node:https';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { ErrorCodes, RouterError, describeError } from '../errors';
import { httpRequest } from '../net/http-client';

/** The compatibility level set on each subject the router creates (never on existing ones). */
export const REGISTRY_COMPATIBILITY = 'BACKWARD';

export interface RegistryOptions {
  url: string;
  username?: string;
  password?: string;
  /** Each registry call fails (retriably) after this long. */
  timeoutMs: number;
  /** false: never register; use each subject's latest registered schema. */
  autoRegister: boolean;
  /** PEM of the CA that signed the registry's certificate (SCHEMA_REGISTRY_CA_FILE's content). */
  ca?: string;
  /** Called when the registry refuses the credentials (401 or 403). */
  onAuthFailure?: () => void;
}

/**
 * The part of a Confluent-compatible schema registry the router uses:
 * decoding framed Avro by schema id, and encoding under a registered schema.
 * Every error it throws is a RouterError whose `retriable` says what it
 * means: the registry is unreachable, slow or overloaded (wait), or it
 * answered that the data or the schema is wrong (do not retry).
 */
export interface RegistryCodec {
  decode(buffer: Buffer): Promise<unknown>;
  /** Encodes `value` under `subject`'s schema (registered or looked up once). */
  encode(subject: string, schema: avro.Schema, value: unknown): Promise<Buffer>;
  /**
   * Registers (or, without auto-registration, looks up and checks) the
   * schema of `subject` now: at start, so that a refusal is a configuration
   * error reported once rather than a write that fails forever.
   */
  prepare(subject: string, schema: avro.Schema): Promise<void>;
}

/** True when `buffer` carries Confluent's wire framing: magic 0 and a schema id. */
export function isConfluentFramed(buffer: Buffer): boolean {
  return buffer.length >= 5 && buffer[0] === 0;
}

// TLS failures count as the network's: while running, the router waits for
// them to be fixed rather than dead-letter Avro it cannot fetch a schema
// for; at start, the connection check reports them as configuration.
const NETWORK =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EPIPE|socket hang up|fetch failed|network|timed? ?out|certificate|CERT_|SSL|TLS/i;

/**
 * What a registry failure means. The network comes first: the client
 * library reports a refused connection as "status 400".
 */
export function registryErrorIsTransient(err: unknown): boolean {
  const message = `${describeError(err)} ${describeError((err as { cause?: unknown }).cause ?? '')}`;
  if (NETWORK.test(message)) return true;
  // The HTTP client's own verdict (a timeout, a connection that failed).
  if ((err as { retriable?: unknown }).retriable === true) return true;
  const status = (err as { status?: number }).status;
  if (typeof status === 'number') return status === 408 || status === 429 || status >= 500;
  // Decoding errors (truncated or trailing bytes, a bad union index...)
  // and anything unrecognised are the data's problem: retrying cannot help.
  return false;
}

function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the schema registry did not answer within ${ms} ms (timed out)`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Splits credentials out of a URL (`https://user:pass@host/...`). */
export function registryEndpoint(options: RegistryOptions): { url: string; auth?: { username: string; password: string } } {
  const url = new URL(options.url);
  let username = options.username;
  let password = options.password;
  if (url.username) {
    username ??= decodeURIComponent(url.username);
    password ??= decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
  }
  const base = url.toString().replace(/\/$/, '');
  return username ? { url: base, auth: { username, password: password ?? '' } } : { url: base };
}

/** How to reach the registry: its URL and credentials, the basic-auth header, and an agent that trusts SCHEMA_REGISTRY_CA_FILE. */
export function registryTransport(options: RegistryOptions): {
  endpoint: ReturnType<typeof registryEndpoint>;
  agent: https.Agent | undefined;
  authHeaders: Record<string, string>;
} {
  const endpoint = registryEndpoint(options);
  const agent = endpoint.url.startsWith('https:') ? new https.Agent({ keepAlive: true, ca: options.ca }) : undefined;
  const authHeaders: Record<string, string> = endpoint.auth
    ? { authorization: `Basic ${Buffer.from(`${endpoint.auth.username}:${endpoint.auth.password}`).toString('base64')}` }
    : {};
  return { endpoint, agent, authHeaders };
}

export function createRegistryCodec(options: RegistryOptions): RegistryCodec {
  const { endpoint, agent, authHeaders } = registryTransport(options);
  const client = new SchemaRegistry({ host: endpoint.url, auth: endpoint.auth, agent });
  const ids = new Map<string, Promise<number>>();

  /** One call of the Confluent REST API; non-2xx throws with `status`. */
  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await httpRequest({
      method,
      url: `${endpoint.url}${path}`,
      headers: {
        accept: 'application/vnd.schemaregistry.v1+json, application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/vnd.schemaregistry.v1+json' }),
        ...authHeaders,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: options.timeoutMs,
      maxResponseBytes: 8 * 1024 * 1024,
      signal: new AbortController().signal,
      agent,
    });
    if (res.status < 200 || res.status >= 300) {
      throw Object.assign(new Error(`${method} ${path}: HTTP ${res.status} ${res.body.slice(0, 300)}`), { status: res.status });
    }
    return res.body ? (JSON.parse(res.body) as unknown) : null;
  }

  const fail = (code: 'REGISTRY_UNAVAILABLE' | 'DECODE_FAILED' | 'REGISTRY_REJECTED', what: string, err: unknown) => {
    const status = (err as { status?: unknown } | null)?.status;
    if (status === 401 || status === 403) options.onAuthFailure?.();
    return new RouterError(ErrorCodes[code], `${what}: ${describeError(err)}`, { retriable: registryErrorIsTransient(err), cause: err });
  };

  async function resolveId(subject: string, schema: avro.Schema): Promise<number> {
    const path = `/subjects/${encodeURIComponent(subject)}`;
    if (!options.autoRegister) {
      const latest = (await call('GET', `${path}/versions/latest`)) as { id: number; schema: string };
      // The router writes its own updates with the registered schema: each
      // field it requires must be one the router fills.
      const registered = avro.Type.forSchema(JSON.parse(latest.schema) as avro.Schema, { wrapUnions: false });
      try {
        registered.createResolver(avro.Type.forSchema(schema, { wrapUnions: false }));
      } catch (err) {
        throw Object.assign(new Error(`the latest schema of ${subject} (id ${latest.id}) cannot hold what the router writes: ${describeError(err)}`), { status: 409 });
      }
      return latest.id;
    }
    let exists = true;
    try {
      await call('GET', `${path}/versions`);
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
      exists = false;
    }
    const registered = (await call('POST', `${path}/versions`, { schema: JSON.stringify(schema) })) as { id: number };
    // A subject the router creates gets BACKWARD; an existing one keeps the
    // level its owners chose (some registries report a default for it).
    if (!exists) await call('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: REGISTRY_COMPATIBILITY });
    return registered.id;
  }

  const idFor = (subject: string, schema: avro.Schema): Promise<number> => {
    let id = ids.get(subject);
    if (!id) {
      id = resolveId(subject, schema);
      // A failed registration is tried again on the next call, not cached.
      id.catch(() => ids.delete(subject));
      ids.set(subject, id);
    }
    return id;
  };

  return {
    async decode(buffer) {
      try {
        return await withTimeout('decode', options.timeoutMs, client.decode(buffer));
      } catch (err) {
        if (registryErrorIsTransient(err)) throw fail('REGISTRY_UNAVAILABLE', 'schema registry decode failed', err);
        throw fail('DECODE_FAILED', 'framed Avro does not decode', err);
      }
    },
    async prepare(subject, schema) {
      try {
        await idFor(subject, schema);
      } catch (err) {
        throw fail(registryErrorIsTransient(err) ? 'REGISTRY_UNAVAILABLE' : 'REGISTRY_REJECTED', `schema registry: subject ${subject}`, err);
      }
    },
    async encode(subject, schema, value) {
      let id: number;
      try {
        id = await idFor(subject, schema);
      } catch (err) {
        throw fail(registryErrorIsTransient(err) ? 'REGISTRY_UNAVAILABLE' : 'REGISTRY_REJECTED', `schema registry: subject ${subject}`, err);
      }
      try {
        return await withTimeout('encode', options.timeoutMs, client.encode(id, value));
      } catch (err) {
        throw fail(registryErrorIsTransient(err) ? 'REGISTRY_UNAVAILABLE' : 'REGISTRY_REJECTED', `encoding under schema ${id} of ${subject} failed`, err);
      }
    },
  };
}
