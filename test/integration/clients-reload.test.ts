import { ChildProcess, spawn } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { App } from '../../src/app';
import { createLogger } from '../../src/log';
import { ApiClient, CLIENTS, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, brokers, eventually, testConfig, testTopics, topicEnv } from '../helpers/kafka';

const ROOT = resolve(__dirname, '..', '..');

/**
 * API_CLIENTS_FILE edited while the router runs, on the real broker and
 * HTTP stack: within 5 s a removed client's tokens, sessions and live
 * streams are refused, a new org, role or secret applies, other clients'
 * tokens go on working, and a broken version keeps the last good one.
 */
describe('clients file reload', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  let file: string;
  const logs: Record<string, unknown>[] = [];
  const kafka = new TestKafka();
  const RELOAD_MS = 5_000;

  type Clients = Record<string, { secret: string; orgId: string; roles: string[] }>;
  let clients: Clients;
  /** Replaces the file as editors and Kubernetes do (a new file renamed over it), or writes it in place. */
  const edit = (change: (c: Clients) => void, how: 'rename' | 'in-place' = 'rename') => {
    change(clients);
    const text = JSON.stringify(clients);
    if (how === 'in-place') writeFileSync(file, text);
    else {
      writeFileSync(`${file}.new`, text);
      renameSync(`${file}.new`, file);
    }
  };

  beforeAll(async () => {
    topics = testTopics();
    clients = JSON.parse(JSON.stringify(CLIENTS)) as Clients;
    const env = apiEnv();
    file = env.API_CLIENTS_FILE!;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    app = new App(testConfig(topics, { ...env, LOG_LEVEL: 'info' }), createLogger('info', sink));
    await app.start();
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
  });

  const signIn = async (client: string, secret: string) => {
    const res = await fetch(`${api.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: api.base, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ clientId: client, clientSecret: secret, next: '/' }).toString(),
    });
    expect(res.status).toBe(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };
  const me = async (cookie: string) => {
    const res = await fetch(`${api.base}/console/api/me`, { headers: { cookie } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const listStatus = async (token: string) => (await api.call('GET', '/v1/actions/runs', { token })).status;
  const tokenStatus = async (client: string, secret: string) => (await api.call('POST', '/v1/auth/access_token', { body: { clientId: client, clientSecret: secret } })).status;
  /** An open live stream; `ended` settles when the server ends it. */
  const stream = async (cookie: string) => {
    const res = await fetch(`${api.base}/console/events`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const ended = (async () => {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) void chunk;
      return true;
    })();
    return { ended };
  };
  const within = <T>(p: Promise<T>, ms: number, what: string) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms).unref())]);

  test('a removed client loses its tokens, sessions and streams within 5 s; other clients keep theirs', async () => {
    const token = await api.token('acme-ci');
    const cookie = await signIn('acme-ci', CLIENTS['acme-ci'].secret);
    const live = await stream(cookie);
    const otherToken = await api.token('acme-agent');
    const otherCookie = await signIn('globex-ci', CLIENTS['globex-ci'].secret);
    expect(await listStatus(token)).toBe(200);

    edit((c) => delete c['acme-ci']);
    const started = Date.now();
    await eventually(async () => (await listStatus(token)) === 401, 'the removed client\'s token refused', RELOAD_MS);
    expect((await me(cookie)).status).toBe(401);
    await within(live.ended, RELOAD_MS - (Date.now() - started), 'the live stream ended');
    expect(await tokenStatus('acme-ci', CLIENTS['acme-ci'].secret)).toBe(401);
    // Tokens and sessions signed before the edit, of clients still in the file, hold.
    expect(await listStatus(otherToken)).toBe(200);
    expect((await me(otherCookie)).status).toBe(200);
    expect(await listStatus(await api.token('acme-agent'))).toBe(200);
  });

  test('a new org, a new role and a new secret apply within 5 s, to tokens, sessions and streams', async () => {
    const globexToken = await api.token('globex-ci');
    const agentCookie = await signIn('acme-agent', CLIENTS['acme-agent'].secret);
    const agentStream = await stream(agentCookie);
    const operatorCookie = await signIn('operator', CLIENTS.operator.secret);

    edit((c) => {
      c['globex-ci']!.orgId = 'org_initech';
      c.operator!.roles = ['admin', 'auditor'];
      c['acme-agent']!.secret = 'acme-agent-rotated-secret-0123456789';
    }, 'in-place');
    await eventually(async () => (await listStatus(globexToken)) === 401, 'the moved client\'s old token refused', RELOAD_MS);
    await eventually(async () => (await me(agentCookie)).status === 401, 'the rotated client\'s session refused', RELOAD_MS);
    await within(agentStream.ended, RELOAD_MS, 'the rotated client\'s stream ended');
    expect((await me(operatorCookie)).body).toMatchObject({ roles: ['admin', 'auditor'] });
    expect(await tokenStatus('acme-agent', CLIENTS['acme-agent'].secret)).toBe(401);
    expect(await tokenStatus('acme-agent', 'acme-agent-rotated-secret-0123456789')).toBe(200);
    const moved = await api.call('POST', '/v1/auth/access_token', { body: { clientId: 'globex-ci', clientSecret: CLIENTS['globex-ci'].secret } });
    const who = await fetch(`${api.base}/console/api/me`, { headers: { authorization: `Bearer ${moved.body.accessToken as string}` } });
    expect(await who.json()).toMatchObject({ orgId: 'org_initech' });
  });

  test('a version that does not parse or validate is logged without its contents and the last good one stays', async () => {
    const token = await api.token('globex-ci');
    for (const [broken, problem] of [
      ['{"globex-ci": {"secret": hunter2-leaked-secret', /not valid JSON/],
      [JSON.stringify({ 'globex-ci': { secret: 'hunter2-leaked-secret', orgId: '*', roles: [] } }), /orgId "\*" is only for clients with the role "admin"/],
      [JSON.stringify({ 'globex-ci': { secret: 'hunter2-leaked-secret', orgId: 'org_globex', roles: [], extra: true } }), /Unrecognized key/],
    ] as const) {
      const before = logs.length;
      writeFileSync(file, broken);
      await eventually(() => logs.slice(before).some((l) => l.msg === 'API clients file not reloaded; the last good version stays in force'), 'the error logged', RELOAD_MS);
      const line = logs.slice(before).find((l) => l.variable === 'API_CLIENTS_FILE' && l.level === 50)!;
      expect(String(line.problem)).toMatch(problem);
      expect(JSON.stringify(logs.slice(before))).not.toContain('hunter2');
      expect(await listStatus(token)).toBe(200);
      expect(await tokenStatus('globex-ci', CLIENTS['globex-ci'].secret)).toBe(200);
    }
    // Fixed again: read again, and in force.
    const before = logs.length;
    edit((c) => delete c['globex-ci']);
    await eventually(() => logs.slice(before).some((l) => l.msg === 'API clients file reloaded'), 'the good version read', RELOAD_MS);
    expect(await listStatus(token)).toBe(401);
  });

  /** `action-router api` as a process on new topics with `clientsFile`, and its JSON log lines as they come. */
  function spawnApi(clientsFile: string, name: string): { child: ChildProcess; lines: Record<string, unknown>[] } {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'action-router.js'), 'api'], {
      env: { PATH: process.env.PATH, KAFKA_BROKERS: brokers(), ...topicEnv(testTopics()), LOG_LEVEL: 'info', HTTP_PORT: '0', API_CLIENTS_FILE: clientsFile, RUNS_DB_PATH: join(tmpdir(), `${name}-${Date.now()}.db`) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const part of parts) if (part.startsWith('{')) lines.push(JSON.parse(part) as Record<string, unknown>);
    });
    return { child, lines };
  }

  test('SIGHUP makes the router read the file again, and does not stop it', async () => {
    const { child, lines } = spawnApi(file, 'sighup');
    try {
      await eventually(() => lines.some((l) => String(l.msg).startsWith('http server listening')), 'the api listening', 60_000);
      child.kill('SIGHUP');
      await eventually(() => lines.some((l) => l.why === 'SIGHUP' && l.variable === 'API_CLIENTS_FILE'), 'the file read again on SIGHUP', RELOAD_MS);
      expect(child.exitCode).toBeNull();
      expect(child.signalCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  }, 90_000);

  test('SIGTERM with a live stream open: the stream is ended by the server, then the process exits 0', async () => {
    // A clients file of its own: the tests above edit theirs.
    const { child, lines } = spawnApi(apiEnv().API_CLIENTS_FILE!, 'sigterm');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await eventually(() => lines.some((l) => String(l.msg).startsWith('http server listening')), 'the api listening', 60_000);
      const port = Number(lines.find((l) => String(l.msg).startsWith('http server listening'))!.port);
      const base = `http://127.0.0.1:${port}`;
      const token = (await (await fetch(`${base}/v1/auth/access_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'acme-ci', clientSecret: CLIENTS['acme-ci'].secret }) })).json()) as { accessToken: string };
      const res = await fetch(`${base}/console/events`, { headers: { authorization: `Bearer ${token.accessToken}` } });
      expect(res.status).toBe(200);
      // How the stream ends: 'clean' when the server ends it, else the error the client saw.
      const ended = (async () => {
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) void chunk;
          return 'clean';
        } catch (err) {
          return `broken: ${(err as Error).message}`;
        }
      })();
      child.kill('SIGTERM');
      expect(await ended).toBe('clean');
      expect(await exited).toBe(0);
      expect(lines.filter((l) => Number(l.level) >= 50)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
