import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors';

/** An org id of `*` with role `admin`: an operator who sees every org. */
export const ALL_ORGS = '*';

const clientSchema = z.strictObject({
  secret: z.string().min(1),
  orgId: z.string().min(1),
  roles: z.array(z.string().min(1)).default([]),
});
const clientsSchema = z.record(z.string().min(1).max(256), clientSchema);

/** Who a request acts as, once authenticated. */
export interface Principal {
  clientId: string;
  /** The org whose runs it may see and change, or ALL_ORGS. */
  orgId: string;
  roles: readonly string[];
  /** When the token or session it came from ends (ms). */
  expiresAt?: number;
}

/** True when `principal` may see runs of `orgId`. */
export function canSee(principal: Principal, orgId: string | null): boolean {
  if (principal.orgId === ALL_ORGS) return principal.roles.includes('admin');
  return orgId !== null && orgId === principal.orgId;
}

interface Client {
  secretHash: Buffer;
  orgId: string;
  roles: string[];
}

/**
 * The API's clients (API_CLIENTS_FILE): `{ "<clientId>": { "secret", "orgId",
 * "roles" } }`. Secrets are compared in constant time, as hashes so that
 * their length does not show either.
 */
export class ApiClients {
  private readonly clients: Map<string, Client>;
  /** Derived from the file: tokens stay valid across instances sharing it. */
  readonly fingerprint: Buffer;

  private constructor(entries: Record<string, z.infer<typeof clientSchema>>, raw: string) {
    this.clients = new Map(
      Object.entries(entries).map(([id, c]) => [id, { secretHash: sha256(c.secret), orgId: c.orgId, roles: c.roles }]),
    );
    this.fingerprint = createHmac('sha256', 'action-router api tokens').update(raw).digest();
  }

  static empty(): ApiClients {
    return new ApiClients({}, '');
  }

  /** Reads and validates the file; an error names API_CLIENTS_FILE. */
  static load(path: string): ApiClients {
    let raw: string;
    try {
      raw = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError('API_CLIENTS_FILE', `cannot read ${path}: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      throw new ConfigError('API_CLIENTS_FILE', `${path} is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = clientsSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError('API_CLIENTS_FILE', `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    for (const [id, c] of Object.entries(parsed.data)) {
      if (c.orgId === ALL_ORGS && !c.roles.includes('admin')) {
        throw new ConfigError('API_CLIENTS_FILE', `${id}: orgId "*" is only for clients with the role "admin"`);
      }
    }
    return new ApiClients(parsed.data, raw);
  }

  get size(): number {
    return this.clients.size;
  }

  /** The principal for these credentials, or null (unknown client or wrong secret). */
  authenticate(clientId: string, secret: string): Principal | null {
    const client = this.clients.get(clientId);
    // Hash and compare even for an unknown client: the time taken does not
    // tell which client ids exist.
    const ok = timingSafeEqual(sha256(secret), client?.secretHash ?? UNKNOWN);
    return client && ok ? { clientId, orgId: client.orgId, roles: client.roles } : null;
  }

  /** The current principal of a client (a token outlives no change to the file). */
  principal(clientId: string): Principal | null {
    const client = this.clients.get(clientId);
    return client ? { clientId, orgId: client.orgId, roles: client.roles } : null;
  }

  /** Client ids of an org holding any of `roles` (approvers). */
  withRoles(orgId: string, roles: readonly string[]): string[] {
    return [...this.clients].filter(([, c]) => c.orgId === orgId && c.roles.some((r) => roles.includes(r))).map(([id]) => id);
  }
}

const UNKNOWN = sha256('\u0000no such client\u0000');

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
