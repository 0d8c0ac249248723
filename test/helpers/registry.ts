import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, Server, Socket, connect } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FakeSchemaRegistry } from '../../src/dev/fake-registry';

const ROOT = resolve(__dirname, '..', '..');
/** The real registry beside the project (../shared/tools/apicurio), in CI too. */
export const APICURIO = resolve(ROOT, '..', 'shared', 'tools', 'apicurio', 'registry.sh');

export interface TestRegistry {
  /** SCHEMA_REGISTRY_URL of the registry itself. */
  url: string;
  /** True for Apicurio, false for the local fake (no ../shared here). */
  real: boolean;
  /** The registry's process (real only): SIGSTOP freezes it. */
  pid: number | null;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}

/**
 * Starts Apicurio Registry 3.0.9 from ../shared/tools/apicurio (built on
 * first use, about 2.5 minutes) on a free port; where that tool is missing,
 * says so and starts the local fake instead.
 */
export async function startRegistry(): Promise<TestRegistry> {
  if (!existsSync(APICURIO)) {
    process.stdout.write(`[registry] ${APICURIO} not found: the registry tests run against src/dev/fake-registry.ts, not a real registry\n`);
    const fake = new FakeSchemaRegistry();
    await fake.start();
    return { url: fake.url, real: false, pid: null, stop: () => fake.close() };
  }
  const port = await freePort();
  const out = spawnSync('bash', [APICURIO, 'start', String(port)], { encoding: 'utf8', timeout: 600_000 });
  const url = /SCHEMA_REGISTRY_URL=(\S+)/.exec(out.stdout)?.[1];
  if (out.status !== 0 || !url) throw new Error(`Apicurio did not start: ${out.stderr}`);
  const home = process.env.APICURIO_HOME ?? join(homedir(), '.cache', 'apicurio-registry-3.0.9');
  const pid = Number(readFileSync(join(home, `registry-${port}.pid`), 'utf8').trim());
  return {
    url,
    real: true,
    pid,
    stop: async () => {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      spawnSync('bash', [APICURIO, 'stop', String(port)], { timeout: 60_000 });
    },
  };
}

/**
 * A TCP proxy in front of the registry: `down()` refuses connections as a
 * stopped registry does (ECONNREFUSED), `up()` serves again. Apicurio runs
 * here with in-memory storage, so stopping the process itself would also
 * forget every schema; a registry people run keeps them.
 */
export class RegistryProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: string) {}

  get url(): string {
    const t = new URL(this.target);
    return `http://127.0.0.1:${this.port}${t.pathname}`;
  }

  async up(): Promise<void> {
    const t = new URL(this.target);
    this.server = createServer((client) => {
      const upstream = connect(Number(t.port), t.hostname);
      this.sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }
}
