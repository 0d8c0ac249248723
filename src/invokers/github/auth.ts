import { createSign } from 'node:crypto';
import { BackendError, ErrorCodes } from '../../errors';
import { httpRequest, statusError } from '../http/client';
import type { GithubConfig } from './config';

/** Base64url of a JSON value or buffer, as JWTs want it. */
function b64url(value: object | Buffer): string {
  return (Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value))).toString('base64url');
}

/** A GitHub App JWT (RS256), valid ten minutes, backdated for clock drift. */
export function appJwt(appId: string, privateKey: string, now = Date.now()): string {
  const iat = Math.floor(now / 1000) - 60;
  const unsigned = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ iat, exp: iat + 600, iss: appId })}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(privateKey);
  return `${unsigned}.${b64url(signature)}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * Supplies the Authorization header: a static token, or a GitHub App's
 * installation token, cached until five minutes before it expires (Port's
 * agent asks for a new token on every call).
 */
export class GithubAuth {
  private readonly cache = new Map<string, Promise<CachedToken>>();
  private readonly installations = new Map<string, string>();

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
    let entry = this.cache.get(installation);
    if (entry) {
      const cached = await entry.catch(() => null);
      if (cached && cached.expiresAt - 5 * 60_000 > Date.now()) return `Bearer ${cached.token}`;
    }
    entry = this.mint(installation, signal);
    this.cache.set(installation, entry);
    entry.catch(() => this.cache.delete(installation));
    return `Bearer ${(await entry).token}`;
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

  private async mint(installation: string, signal: AbortSignal): Promise<CachedToken> {
    const res = await this.appRequest('POST', `/app/installations/${installation}/access_tokens`, signal);
    const body = JSON.parse(res) as { token: string; expires_at: string };
    return { token: body.token, expiresAt: Date.parse(body.expires_at) || Date.now() + 30 * 60_000 };
  }

  private async appRequest(method: string, path: string, signal: AbortSignal): Promise<string> {
    const res = await httpRequest({
      method,
      url: `${this.config.apiUrl}${path}`,
      headers: {
        authorization: `Bearer ${appJwt(this.config.appId!, this.config.appPrivateKey!)}`,
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
