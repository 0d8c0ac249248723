import { generateKeyPairSync } from 'node:crypto';
import { FakeGithub } from '../../../src/dev/fake-github';
import { GithubAuth } from '../../../src/invokers/github/auth';
import { githubConfigSchema } from '../../../src/invokers/github/config';
import { AbortedError } from '../../../src/net/retry';

/** GitHub App installation tokens against a local GitHub that verifies each JWT and mints tokens slowly. */
describe('GithubAuth (GitHub App)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let github: FakeGithub;
  const mints = () => github.requests.filter((r) => r.path.endsWith('/access_tokens')).length;
  const auth = (key = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()) =>
    new GithubAuth(githubConfigSchema.parse({ apiUrl: github.url, appId: '777', appPrivateKey: key, appInstallationId: '42' }));

  afterEach(() => github.close());

  async function startGithub(options: { tokenDelayMs?: number; tokenLifetimeMs?: number }): Promise<void> {
    github = new FakeGithub({ app: { id: '777', publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() }, ...options });
    await github.start();
  }

  // Issue 18, defect 1: the mint ran on the first caller's signal, so its abort failed every other waiter with
  // AbortedError, and each caller that found the token stale minted one of its own.
  it('runs that ask at once share one mint, and one that stops waiting leaves the token to the others', async () => {
    await startGithub({ tokenDelayMs: 300 });
    const a = auth();
    const first = new AbortController();
    const asked = [a.header('acme', 'api', first.signal), ...Array.from({ length: 4 }, () => a.header('acme', 'api', new AbortController().signal))];
    first.abort();
    await expect(asked[0]).rejects.toBeInstanceOf(AbortedError);
    const headers = await Promise.all(asked.slice(1));
    expect(new Set(headers).size).toBe(1);
    expect(headers[0]).toMatch(/^Bearer ghs_/);
    expect(mints()).toBe(1);
    // Cached: a later call makes no request.
    expect(await a.header('acme', 'api', new AbortController().signal)).toBe(headers[0]);
    expect(mints()).toBe(1);
  });

  it('a token near its expiry is minted again once, however many runs find it stale', async () => {
    // Tokens that live four minutes are always inside the five-minute refresh margin.
    await startGithub({ tokenDelayMs: 100, tokenLifetimeMs: 4 * 60_000 });
    const a = auth();
    await a.header('acme', 'api', new AbortController().signal);
    expect(mints()).toBe(1);
    await Promise.all(Array.from({ length: 5 }, () => a.header('acme', 'api', new AbortController().signal)));
    expect(mints()).toBe(2);
  });

  it('signs its JWT with a PKCS#1 or a PKCS#8 key (GitHub hands out PKCS#1)', async () => {
    await startGithub({});
    expect(await auth().header('acme', 'api', new AbortController().signal)).toMatch(/^Bearer ghs_/);
    expect(await auth(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()).header('acme', 'api', new AbortController().signal)).toMatch(/^Bearer ghs_/);
    // The fake answers 401 to a JWT it cannot verify: every mint above passed its check.
    expect(github.requests.filter((r) => r.path.endsWith('/access_tokens')).length).toBe(2);
  });
});
