#!/usr/bin/env node
// The embedded local broker: Apache Kafka (KRaft, one node acting as broker
// and controller) resolved from Maven Central with `mvn` and run on the JDK.
//   node scripts/kafka.mjs start   -> prints KAFKA_BROKERS=127.0.0.1:PORT once clients can connect
//   node scripts/kafka.mjs stop    -> stops it, leaves nothing running
// Imported as a module it exports ensureBroker(), startBroker(), stopBroker().
import './quiet-warnings.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = process.env.KAFKA_CACHE_DIR ?? join(ROOT, '.cache', 'kafka');
const POM = join(ROOT, 'scripts', 'kafka', 'pom.xml');
const STATE = join(CACHE, 'broker.json');
const KAFKA_VERSION = /<kafka\.version>([^<]+)</.exec(readFileSync(POM, 'utf8'))[1];
const LIBS = join(CACHE, `libs-${KAFKA_VERSION}`);

const say = (msg) => process.stderr.write(`[kafka] ${msg}\n`);

/** Downloads the broker's jars once; later starts reuse them. */
export function ensureJars() {
  if (existsSync(join(LIBS, '.complete'))) return LIBS;
  say(`resolving Apache Kafka ${KAFKA_VERSION} from Maven Central (first run only)...`);
  const t0 = Date.now();
  // Maven's output goes to stderr: stdout carries only the KAFKA_BROKERS line.
  const mvn = spawnSync('mvn', ['-B', '-q', '-Dstyle.color=never', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${LIBS}`, '-DincludeScope=runtime'], {
    stdio: ['ignore', 2, 'inherit'],
  });
  if (mvn.error) throw new Error(`cannot run mvn (is Maven installed?): ${mvn.error.message}`);
  if (mvn.status !== 0) throw new Error(`mvn exited with ${mvn.status} while resolving Kafka`);
  writeFileSync(join(LIBS, '.complete'), new Date().toISOString());
  say(`resolved ${readdirSync(LIBS).length - 1} jars in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return LIBS;
}

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

function canConnect(port, host = '127.0.0.1') {
  return new Promise((res) => {
    const sock = connect({ port, host });
    sock.setTimeout(1000);
    sock.once('connect', () => { sock.destroy(); res(true); });
    sock.once('error', () => res(false));
    sock.once('timeout', () => { sock.destroy(); res(false); });
  });
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** The extra listeners of a secured broker, by name, with their security protocol. */
const SECURE_LISTENERS = { SSL: 'SSL', MTLS: 'SSL', EXPIRED: 'SSL', SASL_PLAINTEXT: 'SASL_PLAINTEXT', SASL_SSL: 'SASL_SSL' };

/**
 * Settings for the extra listeners (security: { caFile, serverPemFile,
 * expiredServerPemFile, plainUsers }): TLS with the given CA and server
 * key+certificate (PEM), MTLS requiring a client certificate, EXPIRED
 * serving an expired certificate, SASL over plaintext and TLS with PLAIN,
 * SCRAM-SHA-256/512 and OAUTHBEARER (unsecured JWTs: a test broker), and
 * the standard authorizer, so that ACLs can deny a principal.
 */
function securityProperties(security) {
  const jaas = (listener) => {
    const plainUsers = Object.entries(security.plainUsers ?? {}).map(([u, p]) => `user_${u}="${p}"`).join(' ');
    return [
      `listener.name.${listener}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
      `listener.name.${listener}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `listener.name.${listener}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `listener.name.${listener}.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";`,
    ];
  };
  return [
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${security.serverPemFile}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${security.caFile}`,
    'listener.name.mtls.ssl.client.auth=required',
    `listener.name.expired.ssl.keystore.location=${security.expiredServerPemFile}`,
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
    ...jaas('sasl_plaintext'),
    ...jaas('sasl_ssl'),
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found=true',
    // The plaintext listener (tests' own clients, the controller) is the super user.
    'super.users=User:ANONYMOUS',
  ];
}

function serverProperties({ port, controllerPort, dataDir, security, securePorts }) {
  const extra = security ? Object.entries(SECURE_LISTENERS) : [];
  const listeners = [`PLAINTEXT://127.0.0.1:${port}`, ...extra.map(([name]) => `${name}://127.0.0.1:${securePorts[name]}`)];
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${[...listeners, `CONTROLLER://127.0.0.1:${controllerPort}`].join(',')}`,
    `advertised.listeners=${listeners.join(',')}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `listener.security.protocol.map=${['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT', ...extra.map(([name, protocol]) => `${name}:${protocol}`)].join(',')}`,
    ...(security ? securityProperties(security) : []),
    `log.dirs=${join(dataDir, 'logs')}`,
    // A single node: every internal topic has one replica, or consumer
    // groups never find a coordinator.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'num.partitions=3',
    'auto.create.topics.enable=true',
    'delete.topic.enable=true',
    'log.retention.hours=24',
    'log.segment.bytes=67108864',
    'num.network.threads=2',
    'num.io.threads=4',
    '',
  ].join('\n');
}

const LOG4J = [
  'status=warn',
  'appender.file.type=Console',
  'appender.file.name=OUT',
  'appender.file.layout.type=PatternLayout',
  'appender.file.layout.pattern=[%d] %p %m (%c)%n',
  'rootLogger.level=WARN',
  'rootLogger.appenderRef.out.ref=OUT',
  '',
].join('\n');

/** Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. */
function clusterId() {
  return randomBytes(16).toString('base64url');
}

async function waitReady(port, pid, logFile, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const { Kafka, logLevel } = await import('kafkajs');
  while (Date.now() < deadline) {
    if (pid && !alive(pid)) break;
    if (await canConnect(port)) {
      const admin = new Kafka({ brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        await admin.disconnect();
        if (cluster.brokers.length > 0) return;
      } catch {
        await admin.disconnect().catch(() => {});
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '(no log)';
  throw new Error(`Kafka did not accept clients on port ${port} within ${timeoutMs} ms. Log tail:\n${tail}`);
}

/**
 * Starts a broker on `dataDir` (formatting it on first use) and waits until
 * clients can connect. Returns { brokers, pid, port, dataDir }.
 */
export async function startBroker({ dataDir, port, heapMb = 768, security } = {}) {
  const libs = ensureJars();
  mkdirSync(dataDir, { recursive: true });
  // Each listener its own port: the kernel may hand a just-closed port out again, and Kafka refuses two listeners on one.
  const taken = new Set();
  const distinctPort = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  if (port) taken.add(port);
  port ??= await distinctPort();
  const controllerPort = await distinctPort();
  const securePorts = {};
  if (security) for (const name of Object.keys(SECURE_LISTENERS)) securePorts[name] = await distinctPort();
  const config = join(dataDir, 'server.properties');
  writeFileSync(config, serverProperties({ port, controllerPort, dataDir, security, securePorts }));
  writeFileSync(join(dataDir, 'log4j2.properties'), LOG4J);
  const cp = `${libs}/*`;
  if (!existsSync(join(dataDir, 'logs', 'meta.properties'))) {
    // `--cluster-id=ID` in one argument: a random id may start with '-',
    // which the tool's parser would take for an option.
    const fmt = spawnSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId()}`, '--config', config], { encoding: 'utf8' });
    if (fmt.status !== 0) throw new Error(`formatting Kafka storage failed: ${fmt.stderr || fmt.stdout}`);
  }
  const logFile = join(dataDir, 'broker.log');
  const out = openSync(logFile, 'a');
  const child = spawn(
    'java',
    [`-Xms256m`, `-Xmx${heapMb}m`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(dataDir, 'log4j2.properties')}`, '-cp', cp, 'kafka.Kafka', config],
    { detached: true, stdio: ['ignore', out, out] },
  );
  child.unref();
  await waitReady(port, child.pid, logFile, 90_000);
  // SCRAM users are created through the admin API (AlterUserScramCredentials), as on a real cluster.
  // One mechanism per request: the tool refuses two credentials of one user in one.
  for (const [user, password] of Object.entries(security?.scramUsers ?? {})) {
    for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512']) {
      const add = spawnSync('java', ['-cp', cp, 'kafka.admin.ConfigCommand', '--bootstrap-server', `127.0.0.1:${port}`, '--alter',
        '--add-config', `${mechanism}=[password=${password}]`, '--entity-type', 'users', '--entity-name', user], { encoding: 'utf8' });
      if (add.status !== 0) {
        await stopBroker(child.pid);
        throw new Error(`creating SCRAM user ${user} failed: ${add.stderr || add.stdout}`);
      }
    }
  }
  return { brokers: `127.0.0.1:${port}`, pid: child.pid, port, dataDir, ...(security ? { listeners: securePorts } : {}) };
}

/** Stops a broker started by startBroker (SIGTERM, then SIGKILL after a while). */
export async function stopBroker(pid, { timeoutMs = 30_000, signal = 'SIGTERM' } = {}) {
  if (!pid || !alive(pid)) return;
  try { process.kill(pid, signal); } catch { return; }
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
}

function readState() {
  try { return JSON.parse(readFileSync(STATE, 'utf8')); } catch { return null; }
}

/**
 * The shared local broker: reuses a running one, else starts it on
 * .cache/kafka/data. `started` says whether this call started it.
 */
export async function ensureBroker() {
  const state = readState();
  if (state && alive(state.pid) && (await canConnect(state.port))) {
    return { brokers: state.brokers, started: false, pid: state.pid };
  }
  const dataDir = join(CACHE, 'data');
  const t0 = Date.now();
  let info;
  try {
    // Reuse the last port when it is free, so clients that kept the address still work.
    const port = state && !(await canConnect(state.port)) ? state.port : undefined;
    info = await startBroker({ dataDir, port });
  } catch (err) {
    // A data folder from an older version, or a corrupt one: start afresh once.
    say(`start failed (${err.message.split('\n')[0]}); retrying with a fresh data folder`);
    rmSync(dataDir, { recursive: true, force: true });
    info = await startBroker({ dataDir });
  }
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(STATE, JSON.stringify({ ...info, startedAt: new Date().toISOString() }));
  say(`broker up at ${info.brokers} in ${((Date.now() - t0) / 1000).toFixed(1)}s (data: ${dataDir}, log: ${join(dataDir, 'broker.log')})`);
  return { brokers: info.brokers, started: true, pid: info.pid };
}

export async function stopSharedBroker() {
  const state = readState();
  if (!state) return false;
  await stopBroker(state.pid);
  rmSync(STATE, { force: true });
  return true;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cmd = process.argv[2];
  try {
    if (cmd === 'start') {
      const { brokers } = await ensureBroker();
      process.stdout.write(`KAFKA_BROKERS=${brokers}\n`);
    } else if (cmd === 'start-at') {
      // A broker of its own on DIR (and PORT), for tests that stop and restart it;
      // `--security FILE`: the extra listeners of securityProperties() (a JSON file).
      const args = process.argv.slice(3);
      const at = args.indexOf('--security');
      const security = at >= 0 ? JSON.parse(readFileSync(args.splice(at, 2)[1], 'utf8')) : undefined;
      const [dir, port] = args;
      const info = await startBroker({ dataDir: resolve(dir), port: port ? Number(port) : undefined, heapMb: 512, security });
      process.stdout.write(`${JSON.stringify(info)}\n`);
    } else if (cmd === 'stop-pid') {
      await stopBroker(Number(process.argv[3]));
    } else if (cmd === 'stop') {
      say((await stopSharedBroker()) ? 'stopped' : 'no local broker was running');
    } else {
      say('usage: node scripts/kafka.mjs start|stop|start-at DIR [PORT] [--security FILE]|stop-pid PID');
      process.exit(2);
    }
  } catch (err) {
    say(err.message);
    process.exit(1);
  }
}
