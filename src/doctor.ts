import net from 'node:net';
import tls from 'node:tls';
import type { Admin } from 'kafkajs';
import type { Config } from './config/config';
import { createRegistryCodec, registryTransport } from './codec/registry';
import { registryOptions } from './config/config';
import { describeError } from './errors';
import { httpRequest } from './net/http-client';
import { createKafka } from './kafka/client';
import { certificateWarnings, describeAuth, kafkaTlsOptions } from './kafka/security';
import { silentLogger } from './log';
import { statusUpdateSchema } from './codec/avro';

/**
 * Connection checks, in the order a connection fails: the brokers' ports,
 * TLS, Kafka's own handshake, authentication, the topics and group, and
 * the schema registry. `action-router doctor` prints them all;
 * `action-router start` runs them first and stops on a failure, one line
 * per problem, each naming what to change.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  status: CheckStatus;
  what: string;
  detail: string;
  /** A failure that may pass by itself (a broker not up yet): start waits for it. */
  transient?: boolean;
}

const PROBE_TIMEOUT_MS = 5_000;

const TLS_HINTS: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN: "the broker's certificate chain ends at a CA this router does not trust: set KAFKA_SSL_CA_FILE to the cluster's CA",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the broker's certificate is self-signed: set KAFKA_SSL_CA_FILE to it",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the broker's certificate is signed by a CA this router does not trust: set KAFKA_SSL_CA_FILE to the cluster's CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the broker's certificate is signed by a CA this router does not trust: set KAFKA_SSL_CA_FILE to the cluster's CA",
  CERT_HAS_EXPIRED: "the broker's certificate has expired: the cluster's operators must renew it",
  CERT_NOT_YET_VALID: "the broker's certificate is not valid yet (check this machine's clock)",
  ERR_TLS_CERT_ALTNAME_INVALID: "the broker's certificate is not for this host name: connect by a name it lists, or set KAFKA_SSL_SERVERNAME",
  ERR_SSL_WRONG_VERSION_NUMBER: 'this port does not speak TLS: unset KAFKA_SSL (and the KAFKA_SSL_*_FILE variables), or use the TLS port',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the broker requires a client certificate: set KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the broker refused the client certificate: is KAFKA_SSL_CERT_FILE signed by a CA the cluster trusts?",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: "the broker refused the client certificate: is KAFKA_SSL_CERT_FILE signed by a CA the cluster trusts?",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the broker does not know the CA of KAFKA_SSL_CERT_FILE",
};

/**
 * An error's code. OpenSSL 3.2 and later (Node 24) name TLS alerts
 * `SSL/TLS_ALERT_…` where 3.0 said `SSLV3_ALERT_…`: one name for both.
 */
function errCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return (e?.code ?? e?.cause?.code)?.replace('ERR_SSL_SSL/TLS_ALERT_', 'ERR_SSL_SSLV3_ALERT_');
}

/** Node 24 appends advice to certificate errors (use the system's CA store); our hint names the variable to set instead. */
function withoutNodeAdvice(message: string): string {
  return message.replace(/; if the root CA is installed locally, try running Node\.js with --use-system-ca/, '');
}

/** The first bytes of a Kafka ApiVersions v0 request (allowed before authentication). */
function apiVersionsRequest(correlationId: number): Buffer {
  const clientId = Buffer.from('action-router-doctor');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
  body.writeInt16BE(18, 0);
  body.writeInt16BE(0, 2);
  body.writeInt32BE(correlationId, 4);
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
}

/**
 * Opens a connection to one broker as the router would (TLS or not), then
 * asks it for its API versions: a port that answers, a TLS handshake that
 * holds (the client certificate included, which TLS 1.3 rejects only after
 * the handshake), and something that speaks Kafka.
 */
export function probeBroker(address: string, tlsOptions: tls.ConnectionOptions | undefined, timeoutMs = PROBE_TIMEOUT_MS): Promise<Check> {
  const [host, portText] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
  const port = Number(portText);
  const what = `broker ${address}`;
  return new Promise((resolve) => {
    let done = false;
    let secured = '';
    const finish = (check: Check) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(check);
    };
    const socket: net.Socket = tlsOptions
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...tlsOptions })
      : net.connect({ host, port });
    const timer = setTimeout(
      () =>
        finish({
          status: 'fail',
          what,
          transient: !secured && !tlsOptions,
          detail: secured
            ? `TLS holds but no Kafka answer within ${timeoutMs} ms`
            : `no answer within ${timeoutMs} ms${tlsOptions ? ' (is this a TLS port?)' : ' (a TLS port? set KAFKA_SSL=true)'}`,
        }),
      timeoutMs,
    );
    const ask = () => socket.write(apiVersionsRequest(0x5a5a));
    if (tlsOptions) {
      socket.once('secureConnect', () => {
        const s = socket as tls.TLSSocket;
        const cert = s.getPeerCertificate();
        const cn = cert?.subject?.CN ? `certificate CN=${cert.subject.CN}${cert.valid_to ? `, valid until ${new Date(cert.valid_to).toISOString().slice(0, 10)}` : ''}` : 'no certificate';
        secured = `${s.getProtocol() ?? 'TLS'}, ${cn}${s.authorized ? '' : ' (NOT verified: KAFKA_SSL_REJECT_UNAUTHORIZED=false)'}`;
        ask();
      });
    } else socket.once('connect', ask);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 8 && received.readInt32BE(4) === 0x5a5a) {
        finish({ status: 'ok', what, detail: `${secured ? `${secured}; ` : ''}speaks Kafka` });
      } else if (received.length >= 8) {
        finish({ status: 'fail', what, detail: 'answers, but not as Kafka does (another service on this port?)' });
      }
    });
    socket.once('end', () =>
      finish({
        status: 'fail',
        what,
        detail: tlsOptions
          ? 'the broker closed the connection after the TLS handshake (does it want a client certificate, KAFKA_SSL_CERT_FILE?)'
          : 'the broker closed the connection: is this a TLS port (set KAFKA_SSL=true) or one that needs SASL?',
      }),
    );
    socket.once('error', (err) => {
      const code = errCode(err);
      const network = code && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET'].includes(code);
      if (network && !secured) {
        const hint = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'the host name does not resolve' : 'is KAFKA_BROKERS right, and the port open from here?';
        finish({ status: 'fail', what, transient: code !== 'ENOTFOUND', detail: `cannot connect (${code}): ${hint}` });
        return;
      }
      // OpenSSL's own message spans lines and names C files; its reason is the readable part.
      const reason = withoutNodeAdvice(((err as { reason?: string }).reason ?? err.message).split('\n')[0]!);
      const refusedCert = code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED';
      const hint =
        refusedCert && !tlsOptions?.cert
          ? TLS_HINTS.ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED
          : (code && TLS_HINTS[code]) || (/wrong version number|packet length too long/i.test(reason) ? TLS_HINTS.ERR_SSL_WRONG_VERSION_NUMBER : undefined);
      finish({ status: 'fail', what, detail: `TLS ${secured ? 'connection' : 'handshake'} failed: ${reason}${hint ? ` — ${hint}` : ''}` });
    });
  });
}

function kafkaErrorType(err: unknown): string | undefined {
  const e = err as { type?: string; cause?: { type?: string }; originalError?: { type?: string } };
  return e?.type ?? e?.originalError?.type ?? e?.cause?.type;
}

/** Answers of a group lookup that pass on their own: the broker is still making its offsets topic, or moving a coordinator. */
const COORDINATOR_STARTING = new Set(['GROUP_COORDINATOR_NOT_AVAILABLE', 'GROUP_LOAD_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP']);

/**
 * What a failed group lookup means for the start. A new cluster makes
 * __consumer_offsets on the first coordinator lookup, so "no coordinator"
 * is waited for like an unreachable broker (KAFKA_START_TIMEOUT_MS); a
 * refusal (authorization) fails at once.
 */
export function groupFailure(groupId: string, err: unknown): Check {
  const what = `group ${groupId}`;
  const type = kafkaErrorType(err);
  if (type === 'GROUP_AUTHORIZATION_FAILED') return { status: 'fail', what, detail: "not authorized: grant the router's principal Read on the group (ROUTER_GROUP_ID)" };
  if ((type && COORDINATOR_STARTING.has(type)) || (err as Error | undefined)?.name === 'KafkaJSGroupCoordinatorNotFound') {
    return { status: 'fail', what, transient: true, detail: `no group coordinator yet (${describeError(err)}): a new cluster creates it on first use` };
  }
  return { status: 'fail', what, detail: describeError(err) };
}

async function topicCheck(admin: Admin, topic: string, autoCreate: boolean): Promise<Check> {
  const what = `topic ${topic}`;
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return { status: 'ok', what, detail: `${topics[0]?.partitions.length ?? 0} partitions, visible` };
  } catch (err) {
    const type = kafkaErrorType(err);
    if (type === 'TOPIC_AUTHORIZATION_FAILED') {
      return { status: 'fail', what, detail: "not authorized (TOPIC_AUTHORIZATION_FAILED): grant the router's principal Describe, Read and Write on it" };
    }
    if (type === 'UNKNOWN_TOPIC_OR_PARTITION' || /does not host this topic-partition|UNKNOWN_TOPIC/i.test(describeError(err))) {
      return autoCreate
        ? { status: 'ok', what, detail: 'does not exist yet; the router creates it at start (TOPICS_AUTO_CREATE)' }
        : // Waited for at start (KAFKA_START_TIMEOUT_MS): an operator, or a KafkaTopic resource, may be creating it now.
          { status: 'fail', what, transient: true, detail: 'does not exist, and TOPICS_AUTO_CREATE=false: create it, or let the router' };
    }
    return { status: 'fail', what, detail: describeError(err) };
  }
}

/** The schema registry: reachable, TLS trusted, credentials accepted, and (without auto-registration) the subject there. */
async function registryChecks(config: Config): Promise<Check[]> {
  const options = registryOptions(config);
  if (!options) return [];
  const { endpoint, agent, authHeaders } = registryTransport(options);
  const what = `schema registry ${endpoint.url}`;
  try {
    const res = await httpRequest({
      method: 'GET',
      url: `${endpoint.url}/subjects`,
      headers: { accept: 'application/json', ...authHeaders },
      timeoutMs: Math.min(options.timeoutMs, PROBE_TIMEOUT_MS),
      maxResponseBytes: 1024 * 1024,
      signal: new AbortController().signal,
      agent,
    });
    if (res.status === 401 || res.status === 403) {
      return [{ status: 'fail', what, detail: `refused the credentials (HTTP ${res.status}): set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD (or put them in the URL)` }];
    }
    if (res.status !== 200) return [{ status: 'fail', what, detail: `GET /subjects answered HTTP ${res.status}: is SCHEMA_REGISTRY_URL the registry's Confluent-compatible API?` }];
  } catch (err) {
    const message = withoutNodeAdvice(describeError(err));
    const code = errCode((err as { cause?: unknown }).cause) ?? errCode(err);
    const tlsHint = /certificate|self.signed|unable to verify/i.test(message) ? ' — set SCHEMA_REGISTRY_CA_FILE to the CA that signed the registry\'s certificate' : '';
    return [{ status: tlsHint ? 'fail' : 'warn', what, transient: !tlsHint, detail: `${message}${code ? ` (${code})` : ''}${tlsHint || ' (status writes wait for it)'}` }];
  }
  const checks: Check[] = [{ status: 'ok', what, detail: `answers${endpoint.auth ? ', credentials accepted' : ''}` }];
  if (!options.autoRegister) {
    const subject = `${config.topics.status}-value`;
    try {
      await createRegistryCodec(options).prepare(subject, statusUpdateSchema);
      checks.push({ status: 'ok', what: `subject ${subject}`, detail: 'registered, and holds what the router writes' });
    } catch (err) {
      checks.push({ status: 'fail', what: `subject ${subject}`, detail: `${describeError(err)} (SCHEMA_REGISTRY_AUTO_REGISTER=false: register it first)` });
    }
  }
  return checks;
}

export interface CheckScope {
  /** Topics the process reads and writes. */
  topics: string[];
  /** Its consumer group, when it has one. */
  groupId?: string;
}

/** Every check, in order; later ones are skipped when the brokers cannot be reached. */
export async function connectionChecks(config: Config, scope: CheckScope): Promise<Check[]> {
  const checks: Check[] = [];
  const { kafka } = config;
  checks.push({ status: 'ok', what: 'configuration', detail: `${kafka.brokers.join(', ')}; ${describeAuth(kafka)}` });
  if (kafka.ssl && !kafka.tls.rejectUnauthorized) {
    checks.push({ status: 'warn', what: 'KAFKA_SSL_REJECT_UNAUTHORIZED=false', detail: "the brokers' certificates are NOT verified: anyone on the path can read and change every run. Use it only to diagnose, never in production" });
  }
  for (const warning of certificateWarnings(kafka)) checks.push({ status: 'warn', what: 'certificate', detail: warning });
  const tlsOptions = kafkaTlsOptions(kafka);
  const probes = await Promise.all(kafka.brokers.map((b) => probeBroker(b, tlsOptions)));
  checks.push(...probes);
  if (probes.every((p) => p.status === 'fail')) return [...checks, ...(await registryChecks(config))];

  const client = createKafka(kafka, silentLogger(), '-doctor', { retry: { retries: 1, initialRetryTime: 200 }, connectionTimeout: PROBE_TIMEOUT_MS, requestTimeout: 10_000 });
  const admin = client.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    checks.push({ status: 'ok', what: 'authentication', detail: `${describeAuth(kafka)}; cluster ${cluster.clusterId} with ${cluster.brokers.length} broker(s)` });
  } catch (err) {
    const name = (err as Error).name;
    const detail =
      name === 'KafkaJSSASLAuthenticationError'
        ? `failed (${describeAuth(kafka)}): ${(err as Error).message} — check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or the mechanism: KAFKA_SASL_MECHANISM)`
        : `failed: ${describeError(err)}`;
    checks.push({ status: 'fail', what: 'authentication', detail });
    await admin.disconnect().catch(() => undefined);
    return [...checks, ...(await registryChecks(config))];
  }
  try {
    for (const topic of scope.topics) checks.push(await topicCheck(admin, topic, config.topics.autoCreate));
    if (scope.groupId) {
      try {
        const { groups } = await admin.describeGroups([scope.groupId]);
        const type = kafkaErrorType(groups[0]);
        const refused = type === 'GROUP_AUTHORIZATION_FAILED' || (type && COORDINATOR_STARTING.has(type)) ? groupFailure(scope.groupId, groups[0]) : null;
        checks.push(refused ?? { status: 'ok', what: `group ${scope.groupId}`, detail: `${groups[0]?.state ?? 'unknown'} (${groups[0]?.members.length ?? 0} member(s))` });
      } catch (err) {
        checks.push(groupFailure(scope.groupId, err));
      }
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return [...checks, ...(await registryChecks(config))];
}

/** One line per check, as people read it. */
export function formatCheck(c: Check): string {
  return `${c.status === 'ok' ? 'ok  ' : c.status === 'warn' ? 'WARN' : 'FAIL'}  ${c.what}: ${c.detail}`;
}

/**
 * The start's gate: runs the checks until none fails, or until only lasting
 * failures are left, or `timeoutMs` passed (a broker not up yet is waited
 * for; a wrong CA or password is not). Returns the failures (none: go).
 */
export async function checkBeforeStart(
  config: Config,
  scope: CheckScope,
  timeoutMs: number,
  onWait: (checks: Check[]) => void = () => undefined,
): Promise<{ failures: Check[]; warnings: Check[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const checks = await connectionChecks(config, scope);
    const failures = checks.filter((c) => c.status === 'fail');
    const warnings = checks.filter((c) => c.status === 'warn');
    if (failures.length === 0 || failures.some((f) => !f.transient) || Date.now() >= deadline) return { failures, warnings };
    onWait(failures);
    await new Promise((r) => setTimeout(r, Math.min(2_000, Math.max(0, deadline - Date.now()))));
  }
}
