import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';
import { EncryptJWT, jwtDecrypt } from 'jose';
import type * as OpenIdClient from 'openid-client';
import type { Principal } from '../../access/principal';
import type { SignOuts } from '../../api/sign-outs';
import type { Config } from '../../config/config';
import { ConfigError, describeError } from '../../errors';
import type { Logger } from '../../log';
import { PeopleAccess } from './access-map';

export const PERSON_COOKIE = 'ar_person';
const FLOW_COOKIE = 'ar_oidc';
export const CALLBACK_PATH = '/login/oidc/callback';
/** How long a sign-in may take at the provider. */
const FLOW_SECONDS = 600;
/** A refresh's result is reused this long for requests still carrying the cookie it replaced. */
const REFRESH_REUSE_MS = 60_000;

/** Why a sign-in or a session was refused: a stable code (logged) and what the page says. */
export class SignInRefused extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SignInRefused';
  }
}

interface PersonClaims {
  sub: string;
  em: string | null;
  nm: string | null;
  org: string;
  roles: string[];
  /** When the groups are checked again (ms). */
  ck: number;
  rt: string | null;
}

type Client = typeof OpenIdClient;

/** What the sign-in button calls the provider: OIDC_PROVIDER_NAME, else the issuer's host; null without OIDC. */
export function providerNameOf(config: Pick<Config, 'oidc'>): string | null {
  const o = config.oidc;
  return o.issuerUrl ? (o.providerName ?? new URL(o.issuerUrl).host) : null;
}

/** A secret of this deployment turned into a 256-bit key for one purpose. */
function keyFor(purpose: string, secret: string): Uint8Array {
  return createHash('sha256').update(`action-router ${purpose}\0${secret}`).digest();
}

/**
 * People sign in through an OpenID Connect provider (authorization code
 * with PKCE, `openid-client`): state, nonce and the code verifier travel in
 * a short-lived encrypted cookie of the flow; the ID token's signature
 * (the provider's JWKS), issuer, audience, expiry (30 s of clock tolerance)
 * and nonce are checked by the library. Their groups (OIDC_GROUPS_CLAIM,
 * from the ID token, else UserInfo) map to an org and roles through
 * OIDC_ACCESS_FILE. The session is an encrypted JWT cookie holding who
 * they are, their grant, the refresh token and when to check the groups
 * again; a person taken out of their groups loses access at that check.
 * Signing out is recorded on the sign-out topic like a client's, and
 * continues at the provider (RP-initiated logout) when it offers one.
 */
export class PeopleSignIn {
  readonly providerName: string;
  private readonly sessionKey: Uint8Array;
  private readonly flowKey: Uint8Array;
  private readonly redirectUri: string;
  /** Flows already finished here: a replayed callback is refused. */
  private readonly usedFlows = new Map<string, number>();
  /** Refreshes in progress or just done, by session id. */
  private readonly refreshes = new Map<string, { at: number; result: Promise<{ principal: Principal; cookie: string } | null> }>();

  private constructor(
    private readonly lib: Client,
    private readonly oidc: OpenIdClient.Configuration,
    private readonly config: Config,
    private readonly access: PeopleAccess,
    private readonly signOuts: SignOuts | null,
    private readonly logger: Logger,
  ) {
    const o = config.oidc;
    this.providerName = providerNameOf(config)!;
    const secret = config.api.tokenSecret ?? o.clientSecret!;
    this.sessionKey = keyFor('person sessions', secret);
    this.flowKey = keyFor('oidc flows', secret);
    this.redirectUri = new URL(CALLBACK_PATH, config.publicUrl!).href;
  }

  /**
   * Reads the provider's discovery document, retrying for
   * OIDC_START_TIMEOUT_SECONDS; a provider still away then stops the start
   * with a ConfigError naming OIDC_ISSUER_URL.
   */
  static async start(config: Config, signOuts: SignOuts | null, logger: Logger): Promise<PeopleSignIn> {
    const o = config.oidc;
    const access = new PeopleAccess(o.accessFile!, logger);
    // openid-client is ESM-only: loaded when people sign in here, not before.
    const lib: Client = await import('openid-client');
    const issuer = new URL(o.issuerUrl!);
    const deadline = Date.now() + o.startTimeoutSeconds * 1000;
    let delay = 500;
    for (;;) {
      try {
        const options = issuer.protocol === 'http:' ? { execute: [lib.allowInsecureRequests], timeout: 5 } : { timeout: 5 };
        const oidc = await lib.discovery(issuer, o.clientId!, o.clientSecret!, undefined, options);
        // The ID token's signature is checked against the provider's JWKS, not taken on TLS's word.
        lib.enableNonRepudiationChecks(oidc);
        logger.info({ issuer: issuer.href }, 'OpenID Connect provider discovered');
        return new PeopleSignIn(lib, oidc, config, access, signOuts, logger);
      } catch (err) {
        if (Date.now() + delay > deadline) {
          throw new ConfigError('OIDC_ISSUER_URL', `the provider's discovery document (${issuer.href}) could not be read within ${o.startTimeoutSeconds} s (OIDC_START_TIMEOUT_SECONDS): ${describeError(err)}`);
        }
        logger.warn({ issuer: issuer.href, err: describeError(err) }, 'OpenID Connect provider not reachable yet; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  /** Starts a sign-in: the flow's secrets in their cookie, and the provider's authorization URL. */
  async begin(request: FastifyRequest, reply: FastifyReply, next: string): Promise<string> {
    const verifier = this.lib.randomPKCECodeVerifier();
    const state = this.lib.randomState();
    const nonce = this.lib.randomNonce();
    const flow = await new EncryptJWT({ v: verifier, s: state, n: nonce, nx: next })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setJti(randomUUID())
      .setExpirationTime(`${FLOW_SECONDS}s`)
      .encrypt(this.flowKey);
    // Lax: the provider sends the browser back with a cross-site GET, which a Strict cookie would miss.
    void reply.setCookie(FLOW_COOKIE, flow, { path: '/login/oidc', httpOnly: true, sameSite: 'lax', maxAge: FLOW_SECONDS, secure: this.secure(request) });
    const url = this.lib.buildAuthorizationUrl(this.oidc, {
      redirect_uri: this.redirectUri,
      scope: this.config.oidc.scopes,
      state,
      nonce,
      code_challenge: await this.lib.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    return url.href;
  }

  /** The provider's answer: checked, mapped, and the person's session opened. Returns where to go next. */
  async finish(request: FastifyRequest, reply: FastifyReply): Promise<string> {
    const raw = request.cookies[FLOW_COOKIE];
    void reply.setCookie(FLOW_COOKIE, '', { path: '/login/oidc', httpOnly: true, sameSite: 'lax', maxAge: 0, secure: this.secure(request) });
    if (!raw) throw new SignInRefused('oidc_no_flow', 400, 'This sign-in was not started here, or took longer than 10 minutes. Start again.');
    let flow: { v: string; s: string; n: string; nx: string; jti: string };
    try {
      flow = (await jwtDecrypt(raw, this.flowKey, { requiredClaims: ['exp', 'jti'] })).payload as unknown as typeof flow;
    } catch {
      throw new SignInRefused('oidc_no_flow', 400, 'This sign-in was not started here, or took longer than 10 minutes. Start again.');
    }
    this.forgetOldFlows();
    if (this.usedFlows.has(flow.jti)) throw new SignInRefused('oidc_replayed', 400, 'This sign-in was already used. Start again.');
    this.usedFlows.set(flow.jti, Date.now() + FLOW_SECONDS * 1000);
    const current = new URL(request.url, this.config.publicUrl!);
    const providerError = current.searchParams.get('error');
    if (providerError) throw new SignInRefused('oidc_provider_error', 401, `${this.providerName} did not sign you in (${providerError.slice(0, 64)}).`);
    if (current.searchParams.get('state') !== flow.s) throw new SignInRefused('oidc_state_mismatch', 400, 'The sign-in answer does not belong to the sign-in started here. Start again.');
    let tokens: Awaited<ReturnType<Client['authorizationCodeGrant']>>;
    try {
      tokens = await this.lib.authorizationCodeGrant(this.oidc, current, { pkceCodeVerifier: flow.v, expectedState: flow.s, expectedNonce: flow.n, idTokenExpected: true }, { redirect_uri: this.redirectUri });
    } catch (err) {
      throw this.refusal(err);
    }
    const { principal, cookie } = await this.session(tokens, null);
    void reply.setCookie(PERSON_COOKIE, cookie, this.cookieOptions(request, this.maxSeconds()));
    this.logger.info({ person: principal.clientId, orgId: principal.orgId, roles: principal.roles }, 'console sign-in (OpenID Connect)');
    return flow.nx;
  }

  /** A person's principal and their new session cookie from a token response (sign-in or refresh). */
  private async session(tokens: OpenIdClient.TokenEndpointResponse & OpenIdClient.TokenEndpointResponseHelpers, previous: (PersonClaims & { exp: number; jti: string }) | null): Promise<{ principal: Principal; cookie: string }> {
    const claims = tokens.claims();
    if (!claims && !previous) throw new SignInRefused('oidc_token_invalid', 401, 'The provider sent no ID token.');
    const subject = String(claims?.sub ?? previous!.sub);
    let groups: unknown = claims?.[this.config.oidc.groupsClaim];
    let profile: Record<string, unknown> = { ...(claims ?? {}) };
    if (groups === undefined && tokens.access_token && this.oidc.serverMetadata().userinfo_endpoint) {
      try {
        profile = { ...profile, ...(await this.lib.fetchUserInfo(this.oidc, tokens.access_token, subject)) };
        groups = profile[this.config.oidc.groupsClaim];
      } catch (err) {
        this.logger.warn({ err: describeError(err) }, 'UserInfo could not be read');
      }
    }
    // A one-valued claim (Google's `hd`, a `department`) counts as one group.
    if (typeof groups === 'string') groups = [groups];
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
      throw new SignInRefused('oidc_no_groups', 403, `${this.providerName} says nothing of your groups (no "${this.config.oidc.groupsClaim}" claim): ask for the ${this.config.oidc.groupsClaim} scope or claim to be released to this application.`);
    }
    const email = typeof profile.email === 'string' ? profile.email : (previous?.em ?? null);
    const name = typeof profile.name === 'string' ? profile.name : (previous?.nm ?? null);
    const grant = this.access.grant(groups as string[]);
    if (!grant) {
      throw new SignInRefused('oidc_unmapped', 403, `You are signed in at ${this.providerName} as ${email ?? subject}, but none of your groups (${(groups as string[]).slice(0, 20).join(', ') || 'none'}) is in OIDC_ACCESS_FILE, so this console has nothing for you. Ask its operators to map one of them.`);
    }
    const jti = previous?.jti ?? randomUUID();
    const exp = previous?.exp ?? Math.floor(Date.now() / 1000) + this.maxSeconds();
    const person: PersonClaims = {
      sub: subject,
      em: email,
      nm: name,
      org: grant.orgId,
      roles: grant.roles,
      ck: Date.now() + this.config.oidc.refreshSeconds * 1000,
      rt: tokens.refresh_token ?? previous?.rt ?? null,
    };
    const cookie = await new EncryptJWT({ ...person }).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).setJti(jti).setExpirationTime(exp).encrypt(this.sessionKey);
    return { principal: this.principalOf(person, jti, exp), cookie };
  }

  private principalOf(c: PersonClaims, jti: string, exp: number): Principal {
    return { clientId: c.em ?? c.sub, orgId: c.org, roles: c.roles, expiresAt: exp * 1000, tokenId: jti, person: { subject: c.sub, email: c.em, name: c.nm } };
  }

  /**
   * The person of a request, or null (no session, expired, signed out,
   * or no longer granted). At the check time the groups are read again
   * with the refresh token; `renew` receives the session's new cookie.
   */
  async principal(request: FastifyRequest, renew: (cookie: string) => void): Promise<Principal | null> {
    const raw = request.cookies[PERSON_COOKIE];
    if (!raw) return null;
    let claims: PersonClaims & { exp: number; jti: string };
    try {
      claims = (await jwtDecrypt(raw, this.sessionKey, { requiredClaims: ['exp', 'jti'] })).payload as unknown as typeof claims;
    } catch {
      return null;
    }
    if (this.signOuts && (await this.signOuts.isEnded(claims.jti))) return null;
    if (Date.now() < claims.ck) return this.principalOf(claims, claims.jti, claims.exp);
    const key = `${claims.jti}:${claims.ck}`;
    let entry = this.refreshes.get(key);
    if (!entry || Date.now() - entry.at > REFRESH_REUSE_MS) {
      entry = { at: Date.now(), result: this.refresh(claims) };
      this.refreshes.set(key, entry);
      for (const [k, e] of this.refreshes) if (Date.now() - e.at > REFRESH_REUSE_MS) this.refreshes.delete(k);
    }
    const refreshed = await entry.result;
    if (!refreshed) return null;
    renew(refreshed.cookie);
    return refreshed.principal;
  }

  /** Reads the groups again (refresh token); null ends the session: no refresh token, refused, unmapped, or the provider away. */
  private async refresh(claims: PersonClaims & { exp: number; jti: string }): Promise<{ principal: Principal; cookie: string } | null> {
    if (!claims.rt) {
      this.logger.info({ person: claims.em ?? claims.sub }, 'person session ended: the provider gave no refresh token to check the groups with');
      return null;
    }
    try {
      const tokens = await this.lib.refreshTokenGrant(this.oidc, claims.rt);
      const result = await this.session(tokens, claims);
      if (result.principal.orgId !== claims.org) this.logger.info({ person: result.principal.clientId, from: claims.org, to: result.principal.orgId }, 'a person\'s org changed at refresh');
      return result;
    } catch (err) {
      const code = err instanceof SignInRefused ? err.code : 'oidc_refresh_failed';
      this.logger.info({ person: claims.em ?? claims.sub, code, err: err instanceof SignInRefused ? undefined : describeError(err) }, 'person session ended at the groups check');
      return null;
    }
  }

  /**
   * Ends the person's session here and on every instance; returns the
   * provider's end-session URL (RP-initiated logout) when it has one.
   */
  async close(request: FastifyRequest, reply: FastifyReply): Promise<string | null> {
    void reply.setCookie(PERSON_COOKIE, '', this.cookieOptions(request, 0));
    const raw = request.cookies[PERSON_COOKIE];
    if (!raw) return null;
    try {
      const { payload } = await jwtDecrypt(raw, this.sessionKey, { requiredClaims: ['exp', 'jti'] });
      await this.signOuts?.end(String(payload.jti), Number(payload.exp) * 1000);
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'person sign-out not recorded');
    }
    if (!this.oidc.serverMetadata().end_session_endpoint) return null;
    return this.lib.buildEndSessionUrl(this.oidc, { client_id: this.config.oidc.clientId!, post_logout_redirect_uri: new URL('/login', this.config.publicUrl!).href }).href;
  }

  /** The person cookie's settings (the server sets a renewed one). */
  cookieOptions(request: FastifyRequest, maxAge: number): CookieSerializeOptions {
    return { path: '/', httpOnly: true, sameSite: 'strict', maxAge, secure: this.secure(request) };
  }

  maxSeconds(): number {
    return this.config.oidc.sessionMaxSeconds ?? this.config.console.sessionSeconds;
  }

  private secure(request: FastifyRequest): boolean {
    return this.config.console.secureCookie || request.protocol === 'https' || new URL(this.config.publicUrl!).protocol === 'https:';
  }

  private forgetOldFlows(): void {
    const now = Date.now();
    for (const [id, until] of this.usedFlows) if (until < now) this.usedFlows.delete(id);
  }

  /** What the library's refusal means to the person (never the token). */
  private refusal(err: unknown): SignInRefused {
    const text = describeError(err);
    const code = (err as { code?: string }).code;
    // The claim a check failed on (openid-client wraps oauth4webapi's error); never the claims themselves.
    let claim: unknown;
    for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4 && claim === undefined; e = (e as { cause?: unknown }).cause, depth++) {
      claim = (e as { claim?: unknown }).claim;
    }
    this.logger.warn({ code, claim: typeof claim === 'string' ? claim : undefined, err: text.slice(0, 300) }, 'OpenID Connect sign-in refused');
    if (claim === 'nonce') return new SignInRefused('oidc_token_invalid', 401, 'The ID token does not belong to this sign-in (nonce).');
    if (/state/i.test(text)) return new SignInRefused('oidc_state_mismatch', 400, 'The sign-in answer does not belong to the sign-in started here. Start again.');
    if (/nonce/i.test(text)) return new SignInRefused('oidc_token_invalid', 401, 'The ID token does not belong to this sign-in (nonce).');
    if (/fetch failed|ECONNREFUSED|timed? ?out|network/i.test(text)) return new SignInRefused('oidc_provider_unreachable', 503, `${this.providerName} could not be reached. Try again.`);
    return new SignInRefused('oidc_token_invalid', 401, `${this.providerName}'s answer was not accepted: ${text.slice(0, 200)}`);
  }
}
