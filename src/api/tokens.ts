import { KeyObject, createSecretKey } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { ApiClients, Principal } from './clients';

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
  /** Made once: jose would otherwise import raw key bytes on every verification. */
  private readonly key: KeyObject;

  constructor(
    private readonly clients: ApiClients,
    readonly ttlSeconds: number,
    secret?: string,
    private readonly audience = API_AUDIENCE,
  ) {
    this.key = createSecretKey(secret ? Buffer.from(secret, 'utf8') : Buffer.from(clients.fingerprint));
  }

  async issue(principal: Principal): Promise<string> {
    return new SignJWT({ org: principal.orgId, roles: [...principal.roles] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(principal.clientId)
      .setIssuer(ISSUER)
      .setAudience(this.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /**
   * The principal a token stands for, or null: a bad signature, another
   * algorithm, expired, or a client removed or moved to another org since.
   */
  async verify(token: string): Promise<Principal | null> {
    try {
      // A token without an expiry would hold for good: refused, whoever signed it.
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, audience: this.audience, algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
      const current = typeof payload.sub === 'string' ? this.clients.principal(payload.sub) : null;
      if (!current || current.orgId !== payload.org) return null;
      return { ...current, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined };
    } catch {
      return null;
    }
  }
}
