import { KeyObject, createSecretKey, randomUUID } from 'node:crypto';
import { SignJWT, errors, jwtVerify } from 'jose';
import type { ApiClients } from './clients';
import type { Principal } from '../access/principal';

const ISSUER = 'action-router';
/** Bearer tokens of the runs API. */
export const API_AUDIENCE = 'action-router-api';
/** The console's session cookies: not accepted as Bearer tokens, nor these as sessions. */
export const CONSOLE_AUDIENCE = 'action-router-console';

/**
 * Bearer tokens: HS256 JWTs (jose) bound to a client, its org and roles,
 * that expire. The key is API_TOKEN_SECRET, else derived from the clients
 * file, so every instance sharing the file accepts every instance's tokens.
 */
export class TokenIssuer {
  /** API_TOKEN_SECRET's key; unset: keys from the clients file's versions. */
  private readonly fixed: KeyObject | null;
  /** Made once per fingerprint: jose would otherwise import raw key bytes on every verification. */
  private readonly derived = new WeakMap<Buffer, KeyObject>();

  constructor(
    private readonly clients: ApiClients,
    readonly ttlSeconds: number,
    secret?: string,
    private readonly audience = API_AUDIENCE,
  ) {
    this.fixed = secret ? createSecretKey(Buffer.from(secret, 'utf8')) : null;
  }

  async issue(principal: Principal): Promise<string> {
    return new SignJWT({ org: principal.orgId, roles: [...principal.roles], sv: this.clients.secretVersion(principal.clientId) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(principal.clientId)
      .setIssuer(ISSUER)
      .setAudience(this.audience)
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.keys()[0]!);
  }

  /**
   * The principal a token stands for, or null: a bad signature, another
   * algorithm, expired, or a client removed, moved to another org or given
   * a new secret since (the file is re-read while the process runs).
   */
  async verify(token: string): Promise<Principal | null> {
    for (const key of this.keys()) {
      try {
        // A token without an expiry would hold for good: refused, whoever signed it.
        // A console session has an id, so that signing out can end it.
        const requiredClaims = this.audience === CONSOLE_AUDIENCE ? ['exp', 'sub', 'jti'] : ['exp', 'sub'];
        const { payload } = await jwtVerify(token, key, { issuer: ISSUER, audience: this.audience, algorithms: ['HS256'], requiredClaims });
        const current = typeof payload.sub === 'string' ? this.clients.principal(payload.sub) : null;
        if (!current || current.orgId !== payload.org || payload.sv !== this.clients.secretVersion(current.clientId)) return null;
        return { ...current, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined, ...(typeof payload.jti === 'string' ? { tokenId: payload.jti } : {}) };
      } catch (err) {
        // Another key may have signed it (an earlier version of the file); anything else is final.
        if (!(err instanceof errors.JWSSignatureVerificationFailed)) return null;
      }
    }
    return null;
  }

  private keys(): KeyObject[] {
    if (this.fixed) return [this.fixed];
    return this.clients.fingerprints.map((f) => {
      let key = this.derived.get(f);
      if (!key) {
        key = createSecretKey(Buffer.from(f));
        this.derived.set(f, key);
      }
      return key;
    });
  }
}
