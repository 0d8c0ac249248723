import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from './cleanup';
import { eventually } from './kafka';
import { freePort, spawnRouter, stopped } from './processes';

export interface TestUser {
  email?: string;
  name?: string;
  groups?: string[];
}

/**
 * node-oidc-provider in a process of its own (test/helpers/oidc-provider.mjs),
 * with one client for the router and the given users; any password signs in.
 */
export class TestProvider {
  private constructor(
    readonly issuer: string,
    private readonly usersFile: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(redirectBase: string, users: Record<string, TestUser>, clientSecret: string): Promise<TestProvider> {
    const port = await freePort();
    const dir = tempDir('oidc-provider-');
    const usersFile = join(dir, 'users.json');
    writeFileSync(usersFile, JSON.stringify(users));
    const config = {
      usersFile,
      clients: [
        {
          client_id: 'action-router',
          client_secret: clientSecret,
          redirect_uris: [`${redirectBase}/login/oidc/callback`],
          post_logout_redirect_uris: [`${redirectBase}/login`],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
        },
      ],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const child = spawn(process.execPath, [resolve(__dirname, 'oidc-provider.mjs'), String(port), join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let errors = '';
    child.stderr!.on('data', (d) => (errors += d));
    await new Promise<void>((ready, failed) => {
      child.stdout!.on('data', (d) => String(d).includes('ready') && ready());
      child.on('exit', (code) => failed(new Error(`the OpenID provider exited (${code}): ${errors}`)));
    });
    return new TestProvider(`http://127.0.0.1:${port}`, usersFile, child);
  }

  /** Changes who is who: read again by the provider at every token. */
  setUsers(users: Record<string, TestUser>): void {
    writeFileSync(this.usersFile, JSON.stringify(users));
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await stopped(this.child);
  }
}

/** A router process on a port known in advance (its PUBLIC_URL is the redirect URI's base), ready when this resolves. */
export class RouterProcess {
  private constructor(
    readonly base: string,
    readonly child: ChildProcess,
    /** Its log (stdout and stderr). */
    readonly logPath: string,
  ) {}

  static async port(): Promise<{ port: number; base: string }> {
    const port = await freePort();
    return { port, base: `http://127.0.0.1:${port}` };
  }

  static async start(port: number, env: Record<string, string>, name: string): Promise<RouterProcess> {
    const logDir = tempDir('router-log-');
    const child = spawnRouter({ HTTP_PORT: String(port), ...env }, name, logDir);
    const base = `http://127.0.0.1:${port}`;
    let exited = false;
    child.on('exit', () => (exited = true));
    await eventually(async () => {
      if (exited) throw new Error(`router ${name} exited at start (see its log)`);
      return (await fetch(`${base}/readyz`).catch(() => null))?.status === 200;
    }, `router ${name} ready`, 60_000);
    return new RouterProcess(base, child, join(logDir, `${name}.log`));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await stopped(this.child);
  }
}
