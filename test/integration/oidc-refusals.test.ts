import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { apiEnv } from '../helpers/api';
import { tempDir } from '../helpers/cleanup';
import { testTopics, topicEnv } from '../helpers/kafka';
import { RouterProcess } from '../helpers/oidc';
import { freePort, spawnRouter, stopped } from '../helpers/processes';

type Scenario = 'good' | 'other-key' | 'alg-none' | 'expired' | 'audience' | 'nonce' | 'no-groups' | 'state';
type Key = Awaited<ReturnType<typeof generateKeyPair>>;

/**
 * An identity provider that answers as told: discovery, its JWKS, an
 * authorization endpoint that sends the browser straight back, and a token
 * endpoint whose ID token is right or wrong in one way (`scenario`).
 */
class ScriptedProvider {
  scenario: Scenario = 'good';
  private server!: http.Server;
  issuer = '';
  private last = { nonce: '', state: '' };

  constructor(
    private readonly key: Key,
    private readonly otherKey: Key,
    private readonly clientId: string,
  ) {}

  async start(): Promise<void> {
    const jwk = { ...(await exportJWK(this.key.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url!, this.issuer);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/.well-known/openid-configuration') {
        return send(200, {
          issuer: this.issuer,
          authorization_endpoint: `${this.issuer}/authorize`,
          token_endpoint: `${this.issuer}/token`,
          jwks_uri: `${this.issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
        });
      }
      if (url.pathname === '/jwks') return send(200, { keys: [jwk] });
      if (url.pathname === '/authorize') {
        this.last = { nonce: url.searchParams.get('nonce') ?? '', state: url.searchParams.get('state') ?? '' };
        const back = new URL(url.searchParams.get('redirect_uri')!);
        back.searchParams.set('code', 'code-1');
        back.searchParams.set('state', this.scenario === 'state' ? 'forged-state' : this.last.state);
        res.writeHead(302, { location: back.href });
        return res.end();
      }
      if (url.pathname === '/token') {
        req.resume();
        req.on('end', () => void this.idToken().then((id_token) => send(200, { access_token: 'at-1', token_type: 'Bearer', expires_in: 300, id_token })));
        return;
      }
      send(404, {});
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async idToken(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { email: 'dana@acme.test', name: 'Dana Lee', nonce: this.scenario === 'nonce' ? 'another-nonce' : this.last.nonce };
    if (this.scenario !== 'no-groups') claims.groups = ['team-acme'];
    const jwt = new SignJWT(claims)
      .setIssuer(this.issuer)
      .setSubject('dana')
      .setAudience(this.scenario === 'audience' ? 'another-client' : this.clientId)
      .setIssuedAt(this.scenario === 'expired' ? now - 3600 : now)
      .setExpirationTime(this.scenario === 'expired' ? now - 600 : now + 300);
    if (this.scenario === 'alg-none') {
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, iss: this.issuer, sub: 'dana', aud: this.clientId, iat: now, exp: now + 300 })}.`;
    }
    return jwt.setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(this.scenario === 'other-key' ? this.otherKey.privateKey : this.key.privateKey);
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }
}

/** The cookies a response sets, by name. */
function setCookies(res: Response): Record<string, string> {
  return Object.fromEntries(res.headers.getSetCookie().map((c) => c.split(';')[0]!.split('=')).map(([k, ...v]) => [k!, v.join('=')]));
}

/**
 * Every bad answer of a provider is refused with a clear page, sets no
 * session and logs no token; a provider down at start stops the start,
 * naming OIDC_ISSUER_URL.
 */
describe('OpenID Connect refusals', () => {
  let idp: ScriptedProvider;
  let router: RouterProcess;

  beforeAll(async () => {
    idp = new ScriptedProvider(await generateKeyPair('RS256'), await generateKeyPair('RS256'), 'action-router');
    await idp.start();
    const { port, base } = await RouterProcess.port();
    const dir = tempDir('oidc-refusals-');
    writeFileSync(join(dir, 'access.json'), JSON.stringify({ 'team-acme': { orgId: 'org_acme', roles: ['member'] } }));
    router = await RouterProcess.start(
      port,
      {
        ...topicEnv(testTopics()),
        ...apiEnv(),
        LOG_LEVEL: 'info',
        PUBLIC_URL: base,
        OIDC_ISSUER_URL: idp.issuer,
        OIDC_CLIENT_ID: 'action-router',
        OIDC_CLIENT_SECRET: 'refusals-client-secret',
        OIDC_ACCESS_FILE: join(dir, 'access.json'),
        OIDC_SCOPES: 'openid email profile groups',
      },
      'oidc-refusals',
    );
  }, 90_000);
  afterAll(async () => {
    await router?.stop();
    await idp?.stop();
  });

  /** The whole round trip as a browser makes it; `tamper` may change the callback request. */
  async function signIn(scenario: Scenario): Promise<{ status: number; body: string; cookies: Record<string, string>; callback: string; flow: string }> {
    idp.scenario = scenario;
    const start = await fetch(`${router.base}/login/oidc?next=%2F`, { redirect: 'manual' });
    expect(start.status).toBe(303);
    const flow = setCookies(start).ar_oidc!;
    const authorize = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const callback = authorize.headers.get('location')!;
    const res = await fetch(callback, { redirect: 'manual', headers: { cookie: `ar_oidc=${flow}` } });
    return { status: res.status, body: await res.text(), cookies: setCookies(res), callback, flow };
  }

  it('the scripted provider’s right answer signs in (so each refusal below is the one fault)', async () => {
    const ok = await signIn('good');
    expect(ok.status).toBe(200);
    expect(ok.cookies.ar_person).toBeTruthy();
    const me = await fetch(`${router.base}/console/api/me`, { headers: { cookie: `ar_person=${ok.cookies.ar_person}` } });
    expect(await me.json()).toMatchObject({ clientId: 'dana@acme.test', orgId: 'org_acme' });
    // A person's session is no Bearer token: Port's API refuses it.
    expect((await fetch(`${router.base}/v1/actions/runs`, { headers: { cookie: `ar_person=${ok.cookies.ar_person}` } })).status).toBe(401);
    // The same callback again (a replay): refused.
    const replay = await fetch(ok.callback, { redirect: 'manual', headers: { cookie: `ar_oidc=${ok.flow}` } });
    expect([replay.status, await replay.text()]).toEqual([400, expect.stringContaining('already used')]);
  });

  it.each([
    ['state', 400, 'does not belong to the sign-in started here'],
    ['nonce', 401, 'nonce'],
    ['other-key', 401, 'was not accepted'],
    ['alg-none', 401, 'was not accepted'],
    ['expired', 401, 'was not accepted'],
    ['audience', 401, 'was not accepted'],
    ['no-groups', 403, 'says nothing of your groups (no &#34;groups&#34; claim)'],
  ] as [Scenario, number, string][])('%s: refused (%i) with a page that says why, and no session', async (scenario, status, says) => {
    const res = await signIn(scenario);
    expect(res.status).toBe(status);
    expect(res.body).toContain(says);
    expect(res.body).toContain('role="alert"');
    expect(res.cookies.ar_person ?? '').toBe('');
  });

  it('a callback without the flow cookie (another browser, or expired) is refused', async () => {
    const res = await signIn('good');
    const again = await fetch(res.callback, { redirect: 'manual' });
    expect([again.status, await again.text()]).toEqual([400, expect.stringContaining('not started here')]);
  });

  it('no token reaches the log', () => {
    const log = readFileSync(router.logPath, 'utf8');
    expect(log).toContain('oidc_token_invalid');
    expect(log).not.toMatch(/eyJ[\w-]{10,}\.[\w-]{10,}/);
    expect(log).not.toContain('at-1');
  });

  it('a provider down at start stops the start, naming OIDC_ISSUER_URL', async () => {
    const closed = await freePort();
    const dir = tempDir('oidc-down-');
    writeFileSync(join(dir, 'access.json'), '{}');
    const logDir = tempDir('oidc-down-log-');
    const child = spawnRouter(
      {
        ...topicEnv(testTopics()),
        ...apiEnv(),
        PUBLIC_URL: 'http://127.0.0.1:1',
        OIDC_ISSUER_URL: `http://127.0.0.1:${closed}`,
        OIDC_CLIENT_ID: 'x',
        OIDC_CLIENT_SECRET: 'y',
        OIDC_ACCESS_FILE: join(dir, 'access.json'),
        OIDC_START_TIMEOUT_SECONDS: '2',
      },
      'oidc-down',
      logDir,
    );
    expect(await stopped(child)).not.toBe(0);
    expect(readFileSync(join(logDir, 'oidc-down.log'), 'utf8')).toMatch(/action-router: OIDC_ISSUER_URL: the provider's discovery document .* could not be read within 2 s/);
  });
});
