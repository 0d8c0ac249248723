import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { Principal } from '../access/principal';
import { ApiError } from '../api/errors';
import { CONSOLE_AUDIENCE, TokenIssuer } from '../api/tokens';
import type { RunsService } from '../api/service';
import type { SignOuts } from '../api/sign-outs';
import { PERSON_COOKIE, PeopleSignIn } from './oidc/people';

export const SESSION_COOKIE = 'ar_session';

export interface SessionOptions {
  /** How long a sign-in lasts. */
  seconds: number;
  /** Mark the cookie Secure even though this server speaks plain HTTP (a TLS proxy in front). */
  secureCookie: boolean;
  tokenSecret?: string;
  /** People's sign-in (OIDC), once the provider was discovered; unset: clients only. */
  people?: () => PeopleSignIn | undefined;
  /** The provider's name on the sign-in button; null: no OIDC. */
  provider?: string | null;
  /** false: the sign-in page takes no client credentials (CONSOLE_CLIENT_SIGNIN). */
  clientSignIn?: boolean;
}

/**
 * Console sign-ins: a JWT of the console's own audience (so it is no
 * Bearer token, and an API token is no session) in an HttpOnly,
 * SameSite=Strict cookie. Every request re-checks the client against the
 * clients file, like API tokens.
 */
export class Sessions {
  private readonly issuer: TokenIssuer;
  private readonly signOuts: SignOuts | null;

  constructor(
    runs: RunsService,
    private readonly options: SessionOptions,
  ) {
    this.issuer = new TokenIssuer(runs.clients, options.seconds, options.tokenSecret, CONSOLE_AUDIENCE);
    this.signOuts = runs.signOuts;
  }

  /** Person sessions renewed while answering a request (the server sets the cookie with the answer). */
  private readonly renewed = new WeakMap<FastifyRequest, string>();

  /** The session's principal, or null: none, invalid, expired, or signed out on any instance. A person's session comes first. */
  async principal(request: FastifyRequest): Promise<Principal | null> {
    const people = this.options.people?.();
    if (people && request.cookies[PERSON_COOKIE]) {
      try {
        const person = await people.principal(request, (cookie) => this.renewed.set(request, cookie));
        if (person) return person;
      } catch {
        throw new ApiError(503, 'unavailable', 'this instance has not read every sign-out yet; try again', { 'retry-after': '2' });
      }
    }
    const token = request.cookies[SESSION_COOKIE];
    const principal = token ? await this.issuer.verify(token) : null;
    if (!principal || !this.signOuts) return principal;
    let ended: boolean;
    try {
      ended = await this.signOuts.isEnded(principal.tokenId!);
    } catch {
      throw new ApiError(503, 'unavailable', 'this instance has not read every sign-out yet; try again', { 'retry-after': '2' });
    }
    return ended ? null : principal;
  }

  async open(request: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<void> {
    const token = await this.issuer.issue(principal);
    void reply.setCookie(SESSION_COOKIE, token, this.cookieOptions(request, this.options.seconds));
  }

  /** The renewed person cookie to send with this request's answer, if any. */
  renewedCookie(request: FastifyRequest): { people: PeopleSignIn; cookie: string } | null {
    const cookie = this.renewed.get(request);
    const people = this.options.people?.();
    return cookie && people ? { people, cookie } : null;
  }

  /**
   * Signs out: the cookies are cleared here, and the session ended on
   * every instance. Returns the provider's end-session URL for a person
   * (RP-initiated logout), else null.
   */
  async close(request: FastifyRequest, reply: FastifyReply): Promise<string | null> {
    const people = this.options.people?.();
    if (people && request.cookies[PERSON_COOKIE]) return people.close(request, reply);
    await this.closeClient(request, reply);
    return null;
  }

  private async closeClient(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    void reply.setCookie(SESSION_COOKIE, '', this.cookieOptions(request, 0));
    const token = request.cookies[SESSION_COOKIE];
    const principal = token ? await this.issuer.verify(token) : null;
    if (!principal?.tokenId || !this.signOuts) return;
    try {
      await this.signOuts.end(principal.tokenId, principal.expiresAt ?? Date.now() + this.options.seconds * 1000);
    } catch {
      throw new ApiError(503, 'unavailable', 'signed out here, but the sign-out could not be recorded for the other instances; sign out again', { 'retry-after': '2' });
    }
  }

  private cookieOptions(request: FastifyRequest, maxAge: number): CookieSerializeOptions {
    return { path: '/', httpOnly: true, sameSite: 'strict', maxAge, secure: this.options.secureCookie || request.protocol === 'https' };
  }
}

/**
 * Refuses a state-changing request that another site caused: the browser
 * says where it came from (Sec-Fetch-Site, Origin), and it must be here.
 * Together with the SameSite=Strict cookie this keeps sign-in, sign-out and
 * decisions from being forged (login CSRF included).
 */
export function assertSameOrigin(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
    throw new ApiError(403, 'forbidden', 'cross-site request refused');
  }
  const origin = request.headers.origin;
  if (origin === undefined) return;
  // The whole origin: scheme and host (http://here is not https://here), as the proxy reports them under TRUST_PROXY.
  let url: URL | null;
  try {
    url = typeof origin === 'string' && origin !== 'null' ? new URL(origin) : null;
  } catch {
    url = null;
  }
  if (!url || url.protocol !== `${request.protocol}:` || url.host !== request.host) {
    throw new ApiError(403, 'forbidden', 'cross-site request refused');
  }
}
