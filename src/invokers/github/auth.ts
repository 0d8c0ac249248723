import { KeyObject, createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { BackendError, ErrorCodes } from '../../errors';
import { httpRequest, statusError } from '../../net/http-client';
import { waitFor } from '../../net/retry';
import type { GithubConfig } from './config';

/** A GitHub App JWT (RS256), valid ten minutes, backdated a minute for clock drift. */
export function appJwt(appId: string, privateKey: KeyObject, now = Date.now()): Promise<string> {
  const iat = Math.floor(now / 1000) - 60;
  return new SignJWT({}).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).setIssuedAt(iat).setExpirationTime(iat + 600).setIssuer(appId).sign(privateKey);
}

interface InstallationToken {
  token: string;
  expiresAt: number;
}

/** One installation's token: the one in hand, and the mint under way. */
interface TokenEntry {
  current: InstallationToken | null;
  minting: Promise<InstallationToken> | null;
}

/** A token this close to its expiry is minted again. */
const REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * Supplies the Authorization header: a static token, or a GitHub App's
 * installation token (Port's agent asks for a new token on every call).
 *
 * The token cache owns its mints: one request per installation at a time,
 * however many runs ask, bounded by the invoker's timeout and aborted only
 * by close(). A run that stops waiting (its partition revoked) leaves the
 * mint to the others, who still get the token.
 */
export class GithubAuth {
  private readonly tokens = new Map<string, TokenEntry>();
  private readonly installations = new Map<string, string>();
  private readonly closing = new AbortController();
  private key: KeyObject | null = null;
  /** Installation token requests made (tests and logs). */
  minted = 0;

  constructor(private readonly config: GithubConfig) {}

  get configured(): boolean {
    return Boolean(this.config.token || (this.config.appId && this.config.appPrivateKey));
  }

  async header(owner: string, repo: string, signal: AbortSignal): Promise<string> {
    if (this.config.token) return `Bearer ${this.config.token}`;
    if (!this.config.appId || !this.config.appPrivateKey) {
      throw new BackendError(ErrorCodes.AUTH_FAILED, 'no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY');
    }
    const installation = this.config.appInstallationId ?? (await this.installationFor(owner, repo, signal));
    return `Bearer ${(await this.token(installation, signal)).token}`;
  }

  /** Stops mints under way. */
  close(): void {
    this.closing.abort();
  }

  private token(installation: string, signal: AbortSignal): Promise<InstallationToken> {
    let entry = this.tokens.get(installation);
    if (!entry) this.tokens.set(installation, (entry = { current: null, minting: null }));
    if (entry.current && entry.current.expiresAt - REFRESH_BEFORE_MS > Date.now()) return Promise.resolve(entry.current);
    const e = entry;
    e.minting ??= this.mint(installation)
      .then((token) => (e.current = token))
      .finally(() => (e.minting = null));
    return waitFor(e.minting, signal);
  }

  private async installationFor(owner: string, repo: string, signal: AbortSignal): Promise<string> {
    const key = `${owner}/${repo}`.toLowerCase();
    const known = this.installations.get(key);
    if (known) return known;
    const res = await this.appRequest('GET', `/repos/${owner}/${repo}/installation`, signal);
    const id = String((JSON.parse(res) as { id: number }).id);
    this.installations.set(key, id);
    return id;
  }

  private async mint(installation: string): Promise<InstallationToken> {
    this.minted++;
    const res = await this.appRequest('POST', `/app/installations/${installation}/access_tokens`, this.closing.signal);
    const body = JSON.parse(res) as { token: string; expires_at: string };
    return { token: body.token, expiresAt: Date.parse(body.expires_at) || Date.now() + 30 * 60_000 };
  }

  private async appRequest(method: string, path: string, signal: AbortSignal): Promise<string> {
    // PKCS#1 ("BEGIN RSA PRIVATE KEY", as GitHub hands it out) and PKCS#8 both read.
    this.key ??= createPrivateKey(this.config.appPrivateKey!);
    const res = await httpRequest({
      method,
      url: `${this.config.apiUrl}${path}`,
      headers: {
        authorization: `Bearer ${await appJwt(this.config.appId!, this.key)}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'action-router',
      },
      timeoutMs: this.config.timeoutMs,
      maxResponseBytes: 256 * 1024,
      signal,
    });
    const err = statusError(res, `GitHub App ${method} ${path}`);
    if (err) throw err;
    return res.body;
  }
}
