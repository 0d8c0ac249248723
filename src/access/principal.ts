/*
 * Who acts, and what of which org they may see and change: the one place
 * the org rules live. The API, the console and approvals ask here.
 */

/** An org id of `*` with role `admin`: an operator who sees every org. */
export const ALL_ORGS = '*';

/** A person signed in through the identity provider (OIDC), as its ID token names them. */
export interface Person {
  /** The provider's `sub`. */
  subject: string;
  email: string | null;
  name: string | null;
}

/** Who a request acts as, once authenticated. */
export interface Principal {
  /** The API client's id; for a person, their email (else their subject): what logs and decisions record. */
  clientId: string;
  /** Set when a person signed in through OIDC, not an API client. */
  person?: Person;
  /** The org whose runs it may see and change, or ALL_ORGS. */
  orgId: string;
  roles: readonly string[];
  /** When the token or session it came from ends (ms). */
  expiresAt?: number;
  /** The token's or session's own id (`jti`): a signed-out session is refused by it. */
  tokenId?: string;
}

/** True when `principal` may see runs of `orgId`. */
export function canSee(principal: Principal, orgId: string | null): boolean {
  if (principal.orgId === ALL_ORGS) return principal.roles.includes('admin');
  return orgId !== null && orgId === principal.orgId;
}

/** True when `principal` is an admin of `orgId` (or of every org). */
export function isOrgAdmin(principal: Principal, orgId: string | null): boolean {
  return principal.roles.includes('admin') && ((orgId !== null && principal.orgId === orgId) || principal.orgId === ALL_ORGS);
}

/** The org a principal's lists are limited to, or undefined for an operator of every org. */
export function orgScope(principal: Pick<Principal, 'orgId'>): string | undefined {
  return principal.orgId === ALL_ORGS ? undefined : principal.orgId;
}
