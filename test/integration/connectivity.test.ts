import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, Partitioners, ResourcePatternTypes, logLevel } from 'kafkajs';
import type { App } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { FakeSchemaRegistry } from '../../src/dev/fake-registry';
import { ConfigError } from '../../src/errors';
import { newRunId, samplePortMessage } from '../../src/sample';
import { TestPki, makePki } from '../helpers/certs';
import { TestTopics, eventually, startApp, testConfig, testTopics, uid } from '../helpers/kafka';
import { DedicatedBroker, startDedicatedBroker, stopDedicatedBroker } from '../helpers/processes';

const ROOT = resolve(__dirname, '..', '..');
const SCRAM = { alice: 'alice-scram-secret-0123', mallory: 'mallory-scram-secret-0123' };
const PLAIN = { alice: 'alice-plain-secret-0123' };

/** An unsigned JWT, as Kafka's unsecured OAUTHBEARER validator (a test broker's) accepts. */
function unsecuredJwt(sub: string, ttlSeconds = 3600): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none' })}.${part({ sub, iat: now, exp: now + ttlSeconds })}.`;
}

/**
 * The router on the clusters people run: a broker of the test's own with
 * TLS (a CA and certificates made by openssl now), mutual TLS, an expired
 * certificate, SASL (PLAIN, SCRAM users created through the admin API,
 * OAUTHBEARER), and ACLs. Runs are routed over each; each misconfiguration
 * stops `action-router start` with one clear line.
 */
describe('connectivity', () => {
  let pki: TestPki;
  let broker: DedicatedBroker;
  let plain: Kafka;
  let ports: NonNullable<DedicatedBroker['listeners']>;
  const apps: App[] = [];

  beforeAll(async () => {
    pki = makePki();
    broker = startDedicatedBroker(undefined, undefined, {
      caFile: pki.caFile,
      serverPemFile: pki.serverPemFile,
      expiredServerPemFile: pki.expiredServerPemFile,
      plainUsers: PLAIN,
      scramUsers: SCRAM,
    });
    ports = broker.listeners!;
    plain = new Kafka({ brokers: [broker.brokers], logLevel: logLevel.NOTHING });
    const admin = plain.admin();
    await admin.connect();
    // Everyone may use every topic, except mallory (a deny wins over an allow).
    const everyone = {
      resourceType: AclResourceTypes.TOPIC,
      resourceName: '*',
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: 'User:*',
      host: '*',
      operation: AclOperationTypes.ALL,
      permissionType: AclPermissionTypes.ALLOW,
    };
    await admin.createAcls({
      acl: [
        everyone,
        {
          resourceType: AclResourceTypes.TOPIC,
          resourceName: '*',
          resourcePatternType: ResourcePatternTypes.LITERAL,
          principal: 'User:mallory',
          host: '*',
          operation: AclOperationTypes.ALL,
          permissionType: AclPermissionTypes.DENY,
        },
      ],
    });
    await admin.disconnect();
  }, 180_000);

  afterAll(async () => {
    for (const app of apps) await app.stop().catch(() => undefined);
    if (broker) stopDedicatedBroker(broker);
  });

  const at = (listener: keyof typeof ports) => `127.0.0.1:${ports[listener]}`;

  /** Routes one KAFKA run with a router connected by `env`; resolves when the store shows it routed. */
  async function routes(env: Record<string, string>): Promise<void> {
    const topics: TestTopics = testTopics();
    const app = await startApp(testConfig(topics, { ...env, KAFKA_START_TIMEOUT_MS: '5000' }));
    apps.push(app);
    const producer = plain.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const runId = newRunId();
    await producer.send({ topic: topics.trigger, messages: [{ key: runId, value: JSON.stringify(samplePortMessage({ runId, invocationMethod: { type: 'KAFKA' } })) }] });
    await producer.disconnect();
    await eventually(() => app.runs!.store.getRun(runId)?.status === 'IN_PROGRESS', `run ${runId} routed`, 30_000);
    expect(app.runs!.store.logs(runId, 10, 0)[0]!.message).toBe(`Routed to Kafka topic ${topics.orgTemplate.replace('{orgId}', 'org_demo')}`);
    await app.stop();
    apps.splice(apps.indexOf(app), 1);
  }

  test('plaintext', () => routes({ KAFKA_BROKERS: broker.brokers }));
  test('TLS with a private CA', () => routes({ KAFKA_BROKERS: at('SSL'), KAFKA_SSL_CA_FILE: pki.caFile }));
  test('mutual TLS, the client key encrypted', () =>
    routes({
      KAFKA_BROKERS: at('MTLS'),
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SSL_CERT_FILE: pki.clientCertFile,
      KAFKA_SSL_KEY_FILE: pki.clientEncryptedKeyFile,
      KAFKA_SSL_KEY_PASSWORD: pki.clientKeyPassphrase,
    }));
  test('SASL_PLAINTEXT SCRAM-SHA-256, the password from a file', () => {
    const file = join(pki.dir, 'scram-password');
    writeFileSync(file, `${SCRAM.alice}\n`);
    return routes({ KAFKA_BROKERS: at('SASL_PLAINTEXT'), KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD_FILE: file });
  });
  test('SASL_SSL SCRAM-SHA-512', () =>
    routes({ KAFKA_BROKERS: at('SASL_SSL'), KAFKA_SSL_CA_FILE: pki.caFile, KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: SCRAM.alice }));
  test('SASL_SSL PLAIN (Confluent Cloud style)', () =>
    routes({ KAFKA_BROKERS: at('SASL_SSL'), KAFKA_SSL_CA_FILE: pki.caFile, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: PLAIN.alice }));
  test('SASL_SSL OAUTHBEARER with a token file', () => {
    const file = join(pki.dir, 'token');
    writeFileSync(file, unsecuredJwt('router'));
    return routes({ KAFKA_BROKERS: at('SASL_SSL'), KAFKA_SSL_CA_FILE: pki.caFile, KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: file });
  });
  test('SASL_SSL OAUTHBEARER from a token endpoint (client credentials), tokens fetched once and reused', async () => {
    const requests: { auth: string | undefined; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d)).on('end', () => {
        requests.push({ auth: req.headers.authorization, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: unsecuredJwt('router-client'), token_type: 'Bearer', expires_in: 3600 }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await routes({
        KAFKA_BROKERS: at('SASL_SSL'),
        KAFKA_SSL_CA_FILE: pki.caFile,
        KAFKA_SASL_MECHANISM: 'oauthbearer',
        KAFKA_SASL_OAUTHBEARER_TOKEN_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/token`,
        KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'router-client',
        KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: 'router-client-secret',
        KAFKA_SASL_OAUTHBEARER_SCOPE: 'kafka',
      });
    } finally {
      server.close();
    }
    expect(requests[0]).toEqual({ auth: `Basic ${Buffer.from('router-client:router-client-secret').toString('base64')}`, body: 'grant_type=client_credentials&scope=kafka' });
    // One request per thread that connects (the router's, the store writer's), not one per client, connection or reconnect.
    expect(requests).toHaveLength(2);
  });

  /** `action-router start` (or doctor) as a process; resolves with its exit code and output. */
  function cli(command: 'start' | 'doctor', env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
    const s = `conn-${uid()}`;
    return new Promise((done) => {
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'action-router.js'), command], {
        env: {
          PATH: process.env.PATH,
          LOG_LEVEL: 'warn',
          HTTP_PORT: '0',
          TRIGGER_TOPIC: `${s}.triggers`,
          STATUS_TOPIC: `${s}.status`,
          DLQ_TOPIC: `${s}.dlq`,
          ROUTER_GROUP_ID: s,
          RUNS_DB_PATH: join(pki.dir, `${s}.db`),
          KAFKA_START_TIMEOUT_MS: '3000',
          ...env,
        },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => child.kill('SIGTERM'), 40_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        done({ code, out, err });
      });
    });
  }

  /** The start fails at once, with exactly the problem lines matching `expected`. */
  async function refused(env: Record<string, string>, ...expected: RegExp[]): Promise<string> {
    const t0 = Date.now();
    const { code, err } = await cli('start', env);
    expect(code).toBe(1);
    const lines = err.split('\n').filter((l) => l.startsWith('  FAIL'));
    expect(err).toMatch(/^action-router: cannot start: \d problem\(s\) with the connection:$/m);
    for (const e of expected) if (!lines.some((l) => e.test(l))) throw new Error(`no line matches ${e}:\n${err}`);
    // Lasting problems are not retried until the timeout: the answer comes at once.
    expect(Date.now() - t0).toBeLessThan(20_000);
    return lines.join('\n');
  }

  test('a CA that did not sign the broker certificate: the start says so', async () => {
    await refused(
      { KAFKA_BROKERS: at('SSL'), KAFKA_SSL_CA_FILE: pki.otherCaFile },
      /^ {2}FAIL {2}broker 127\.0\.0\.1:\d+: TLS handshake failed: unable to verify the first certificate — .*set KAFKA_SSL_CA_FILE to the cluster's CA$/,
    );
  });

  test('a certificate for another name; KAFKA_SSL_SERVERNAME names the one it is for', async () => {
    await refused(
      { KAFKA_BROKERS: at('SSL'), KAFKA_SSL_CA_FILE: pki.caFile, KAFKA_SSL_SERVERNAME: 'kafka.other.example' },
      /TLS handshake failed: .*kafka\.other\.example.* — the broker's certificate is not for this host name: connect by a name it lists, or set KAFKA_SSL_SERVERNAME$/,
    );
    await routes({ KAFKA_BROKERS: at('SSL'), KAFKA_SSL_CA_FILE: pki.caFile, KAFKA_SSL_SERVERNAME: 'localhost' });
  });

  test('an expired broker certificate', async () => {
    await refused({ KAFKA_BROKERS: at('EXPIRED'), KAFKA_SSL_CA_FILE: pki.caFile }, /TLS handshake failed: certificate has expired — the broker's certificate has expired/);
  });

  test('a wrong SCRAM password', async () => {
    await refused(
      { KAFKA_BROKERS: at('SASL_SSL'), KAFKA_SSL_CA_FILE: pki.caFile, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: 'not-the-password' },
      /^ {2}FAIL {2}authentication: failed \(SASL SCRAM-SHA-512 as alice over TLS\): .*check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
    );
  });

  test('mutual TLS without a client certificate', async () => {
    await refused(
      { KAFKA_BROKERS: at('MTLS'), KAFKA_SSL_CA_FILE: pki.caFile },
      /^ {2}FAIL {2}broker 127\.0\.0\.1:\d+: TLS connection failed: (?:sslv3|ssl\/tls) alert bad certificate — the broker requires a client certificate: set KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE$/,
    );
  });

  test('a principal the ACLs deny: topic authorization, per topic', async () => {
    const lines = await refused(
      { KAFKA_BROKERS: at('SASL_PLAINTEXT'), KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'mallory', KAFKA_SASL_PASSWORD: SCRAM.mallory },
      /FAIL {2}topic conn-\w+\.triggers: not authorized \(TOPIC_AUTHORIZATION_FAILED\)/,
      /FAIL {2}topic conn-\w+\.status: not authorized/,
      /FAIL {2}topic conn-\w+\.status\.sign-outs: not authorized/,
    );
    expect(lines.split('\n')).toHaveLength(4);
  });

  test('TLS to a plaintext port, and plaintext to a TLS port', async () => {
    await refused({ KAFKA_BROKERS: broker.brokers, KAFKA_SSL: 'true' }, /does not speak TLS|closed the connection/);
    await refused({ KAFKA_BROKERS: at('SSL') }, /is this a TLS port \(set KAFKA_SSL=true\)|set KAFKA_SSL=true/);
  });

  test('doctor says what works', async () => {
    const { code, out } = await cli('doctor', {
      KAFKA_BROKERS: at('MTLS'),
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SSL_CERT_FILE: pki.clientCertFile,
      KAFKA_SSL_KEY_FILE: pki.clientKeyFile,
    });
    if (code !== 0) throw new Error(out);
    expect(out).toMatch(/^ok {4}configuration: 127\.0\.0\.1:\d+; mutual TLS$/m);
    expect(out).toMatch(/^ok {4}broker 127\.0\.0\.1:\d+: TLSv1\.[23], certificate CN=localhost, valid until \d{4}-\d\d-\d\d; speaks Kafka$/m);
    expect(out).toMatch(/^ok {4}authentication: mutual TLS; cluster \S+ with 1 broker\(s\)$/m);
    expect(out).toMatch(/^ok {4}topic conn-\w+\.triggers: does not exist yet; the router creates it at start/m);
    expect(out).toContain('Everything the router needs answers.');
  });

  test('doctor warns loudly when certificates are not verified', async () => {
    const { code, out } = await cli('doctor', { KAFKA_BROKERS: at('SSL'), KAFKA_SSL: 'true', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' });
    expect(code).toBe(0);
    expect(out).toMatch(/^WARN {2}KAFKA_SSL_REJECT_UNAUTHORIZED=false: the brokers' certificates are NOT verified/m);
    expect(out).toMatch(/NOT verified: KAFKA_SSL_REJECT_UNAUTHORIZED=false\); speaks Kafka/);
  });

  test('bad TLS files stop the start naming the variable', () => {
    const env = { KAFKA_BROKERS: at('MTLS'), KAFKA_SSL_CA_FILE: pki.caFile };
    const error = (extra: Record<string, string>) => {
      try {
        loadConfig({ ...env, ...extra });
      } catch (err) {
        return err as ConfigError;
      }
      throw new Error('expected a configuration error');
    };
    expect(error({ KAFKA_SSL_CERT_FILE: pki.clientCertFile, KAFKA_SSL_KEY_FILE: pki.serverKeyFile }).message).toMatch(/^KAFKA_SSL_KEY_FILE: the key in .* is not the key of the certificate/);
    expect(error({ KAFKA_SSL_CERT_FILE: pki.clientCertFile, KAFKA_SSL_KEY_FILE: pki.clientEncryptedKeyFile }).message).toMatch(/^KAFKA_SSL_KEY_PASSWORD: the key in .* is encrypted and KAFKA_SSL_KEY_PASSWORD is unset/);
    expect(error({ KAFKA_SSL_CERT_FILE: pki.clientCertFile, KAFKA_SSL_KEY_FILE: pki.clientEncryptedKeyFile, KAFKA_SSL_KEY_PASSWORD: 'wrong' }).message).toMatch(/^KAFKA_SSL_KEY_PASSWORD: .*does not open it/);
    expect(error({ KAFKA_SSL_CERT_FILE: pki.clientCertFile }).message).toMatch(/^KAFKA_SSL_KEY_FILE: mutual TLS needs both/);
    expect(error({ KAFKA_SSL_CA_FILE: pki.clientKeyFile }).message).toMatch(/^KAFKA_SSL_CA_FILE: .* holds no PEM certificate/);
    expect(error({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'alice' }).message).toMatch(/^KAFKA_SASL_PASSWORD: is required/);
    expect(error({ KAFKA_SASL_MECHANISM: 'oauthbearer' }).message).toMatch(/^KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: OAUTHBEARER needs/);
    expect(error({ KAFKA_SASL_MECHANISM: 'gssapi' }).variable).toBe('KAFKA_SASL_MECHANISM');
    expect(error({ KAFKA_SASL_PASSWORD: 'x', KAFKA_SASL_PASSWORD_FILE: '/nope' }).message).toMatch(/^KAFKA_SASL_PASSWORD_FILE: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both/);
    expect(error({ KAFKA_SASL_PASSWORD_FILE: '/nope/missing' }).message).toMatch(/^KAFKA_SASL_PASSWORD_FILE: cannot read \/nope\/missing/);
    // MSK IAM is TLS only: it turns TLS on; without a region it names where the region comes from.
    expect(error({ KAFKA_SASL_MECHANISM: 'aws-msk-iam' }).message).toMatch(/^KAFKA_SASL_AWS_REGION: aws-msk-iam needs the cluster's region/);
    expect(loadConfig({ KAFKA_BROKERS: 'b-1.msk:9098', KAFKA_SASL_MECHANISM: 'aws-msk-iam', AWS_REGION: 'eu-west-1' }).kafka).toMatchObject({ ssl: true, sasl: { awsRegion: 'eu-west-1' } });
  });

  test('a registry that refuses the credentials: the start says which variables to set', async () => {
    const seen: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error_code":401,"message":"Unauthorized"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const passwordFile = join(pki.dir, 'registry-password');
      writeFileSync(passwordFile, 'wrong-secret\n');
      await refused(
        { KAFKA_BROKERS: broker.brokers, SCHEMA_REGISTRY_URL: url, SCHEMA_REGISTRY_USERNAME: 'router', SCHEMA_REGISTRY_PASSWORD_FILE: passwordFile },
        /^ {2}FAIL {2}schema registry http:\/\/127\.0\.0\.1:\d+: refused the credentials \(HTTP 401\): set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD/,
      );
      expect(seen[0]).toBe(`Basic ${Buffer.from('router:wrong-secret').toString('base64')}`);
    } finally {
      server.close();
    }
  });

  describe('schema registry over TLS with a private CA', () => {
    let fake: FakeSchemaRegistry;
    let proxy: tls.Server;
    let url: string;

    beforeAll(async () => {
      fake = new FakeSchemaRegistry();
      await fake.start();
      const target = new URL(fake.url);
      proxy = tls.createServer({ key: readFileSync(pki.serverKeyFile), cert: readFileSync(pki.serverCertFile) }, (client) => {
        const upstream = net.connect(Number(target.port), target.hostname);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      url = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      proxy?.close();
      await fake?.close();
    });

    test('with SCHEMA_REGISTRY_CA_FILE the router registers and routes; without it the start names the variable', async () => {
      const topics = testTopics();
      const app = await startApp(testConfig(topics, { KAFKA_BROKERS: broker.brokers, SCHEMA_REGISTRY_URL: url, SCHEMA_REGISTRY_CA_FILE: pki.caFile }));
      apps.push(app);
      expect(fake.stored.map((x) => x.subject)).toContain(`${topics.status}-value`);
      await app.stop();
      apps.splice(apps.indexOf(app), 1);
      await refused({ KAFKA_BROKERS: broker.brokers, SCHEMA_REGISTRY_URL: url }, /FAIL {2}schema registry https:\/\/127\.0\.0\.1:\d+: request failed: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\) — set SCHEMA_REGISTRY_CA_FILE/);
    });
  });
});
