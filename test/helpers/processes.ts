import { tempDir } from './cleanup';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AddressInfo, createServer } from 'node:net';
import { brokers } from './kafka';

const ROOT = resolve(__dirname, '..', '..');

/**
 * A router in a process of its own (from the build `npm test` made), so a
 * test can kill it with SIGKILL like a crash would.
 */
export function spawnRouter(env: Record<string, string>, name = 'router', logDir = process.env.TEST_LOG_DIR ?? tempDir('router-log-')): ChildProcess {
  return spawnCli(['start'], { RUNS_DB_PATH: join(logDir, `${name}-runs.db`), ...env }, name, logDir);
}

/**
 * `action-router agent --org ORG` in a process of its own, as spawnRouter.
 * Its call ledger is kept in `<logDir>/<name>-data` unless `env` names a
 * DATA_DIR (a restarted agent that should remember its calls shares one).
 */
export function spawnAgent(orgId: string, env: Record<string, string>, name = 'agent', logDir = process.env.TEST_LOG_DIR ?? tempDir('agent-log-')): ChildProcess {
  return spawnCli(['agent', '--org', orgId], { DATA_DIR: join(logDir, `${name}-data`), ...env }, name, logDir);
}

function spawnCli(args: string[], env: Record<string, string>, name: string, logDir: string): ChildProcess {
  const out = openSync(join(logDir, `${name}.log`), 'a');
  return spawn(process.execPath, [join(ROOT, 'bin', 'action-router.js'), ...args], {
    env: { PATH: process.env.PATH, KAFKA_BROKERS: brokers(), LOG_LEVEL: 'warn', HTTP_PORT: '0', ...env },
    stdio: ['ignore', out, out],
  });
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => r(port));
    });
  });
}

/** The sum of a metric's samples on a router's /metrics (0 when it has none). */
export async function metricSum(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** `action-router runs …` against a router's HTTP server as one client; resolves with its exit code and output. */
export function runsCli(base: string, clientId: string, clientSecret: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return clientCli(base, clientId, clientSecret, 'runs', ...args);
}

/** `action-router COMMAND …` as one API client (runs, dead-letters). */
export function clientCli(base: string, clientId: string, clientSecret: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'action-router.js'), ...args], {
      env: { PATH: process.env.PATH, ACTION_ROUTER_URL: base, ACTION_ROUTER_CLIENT_ID: clientId, ACTION_ROUTER_CLIENT_SECRET: clientSecret },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => done({ code, out, err }));
  });
}

export function stopped(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

export interface DedicatedBroker {
  brokers: string;
  pid: number;
  port: number;
  dataDir: string;
  /** With `security`: the port of each extra listener (SSL, MTLS, EXPIRED, SASL_PLAINTEXT, SASL_SSL). */
  listeners?: Record<'SSL' | 'MTLS' | 'EXPIRED' | 'SASL_PLAINTEXT' | 'SASL_SSL', number>;
}

/** The extra listeners of a secured test broker (scripts/kafka.mjs securityProperties). */
export interface BrokerSecurity {
  caFile: string;
  serverPemFile: string;
  expiredServerPemFile: string;
  plainUsers?: Record<string, string>;
  scramUsers?: Record<string, string>;
}

/** A broker of the test's own (data in a temp folder), to stop and restart. */
export function startDedicatedBroker(dataDir?: string, port?: number, security?: BrokerSecurity): DedicatedBroker {
  const dir = dataDir ?? tempDir('kafka-own-');
  const args = [join(ROOT, 'scripts', 'kafka.mjs'), 'start-at', dir];
  if (port) args.push(String(port));
  if (security) {
    const file = join(dir, 'security.json');
    writeFileSync(file, JSON.stringify(security));
    args.push('--security', file);
  }
  const out = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  if (out.status !== 0) throw new Error(`dedicated broker did not start: ${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as DedicatedBroker;
}

export function stopDedicatedBroker(broker: DedicatedBroker, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): void {
  if (signal === 'SIGKILL') {
    try {
      process.kill(broker.pid, 'SIGKILL');
    } catch {
      return;
    }
  }
  spawnSync(process.execPath, [join(ROOT, 'scripts', 'kafka.mjs'), 'stop-pid', String(broker.pid)], { timeout: 60_000 });
}
