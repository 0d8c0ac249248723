import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors';
import { ALL_ORGS, Principal } from '../access/principal';

const clientSchema = z.strictObject({
  secret: z.string().min(1),
  orgId: z.string().min(1),
  roles: z.array(z.string().min(1)).default([]),
});
const clientsSchema = z.record(z.string().min(1).max(256), clientSchema);

interface Client {
  secretHash: Buffer;
  /** Short digest of the secret, carried by tokens: a rotated secret ends the old ones. */
  secretVersion: string;
  orgId: string;
  roles: string[];
}

/** One parsed clients file. */
interface Snapshot {
  clients: Map<string, Client>;
  raw: string;
  fingerprint: Buffer;
}

/** Signing keys kept from earlier versions of the file, so an edit does not end every other client's tokens. */
const KEPT_FINGERPRINTS = 8;

/**
 * The API's clients (API_CLIENTS_FILE): `{ "<clientId>": { "secret", "orgId",
 * "roles" } }`. Secrets are compared in constant time, as hashes so that
 * their length does not show either. `reload` swaps in a new version of
 * the file; every token, session and stream is re-checked against the
 * current one.
 */
export class ApiClients extends EventEmitter<{ changed: [] }> {
  private current: Snapshot;
  private readonly earlier: Buffer[] = [];

  private constructor(
    snapshot: Snapshot,
    /** The file, or undefined for the empty set. */
    readonly path?: string,
  ) {
    super();
    this.current = snapshot;
  }

  static empty(): ApiClients {
    return new ApiClients(snapshot({}, ''));
  }

  /** Reads and validates the file; an error names API_CLIENTS_FILE. */
  static load(path: string): ApiClients {
    return new ApiClients(read(path), path);
  }

  /**
   * Reads the file again. A version that does not parse or validate
   * throws (a ConfigError naming API_CLIENTS_FILE) and the last good one
   * stays. Returns whether anything changed.
   */
  reload(): boolean {
    if (!this.path) return false;
    const next = read(this.path);
    if (next.raw === this.current.raw) return false;
    this.earlier.unshift(this.current.fingerprint);
    this.earlier.length = Math.min(this.earlier.length, KEPT_FINGERPRINTS);
    this.current = next;
    this.emit('changed');
    return true;
  }

  /** Derived from the file: tokens stay valid across instances sharing it. */
  get fingerprint(): Buffer {
    return this.current.fingerprint;
  }

  /** The current fingerprint, then those of the versions this process read before (newest first). */
  get fingerprints(): readonly Buffer[] {
    return [this.current.fingerprint, ...this.earlier];
  }

  get size(): number {
    return this.current.clients.size;
  }

  /** The principal for these credentials, or null (unknown client or wrong secret). */
  authenticate(clientId: string, secret: string): Principal | null {
    const client = this.current.clients.get(clientId);
    // Hash and compare even for an unknown client: the time taken does not
    // tell which client ids exist.
    const ok = timingSafeEqual(sha256(secret), client?.secretHash ?? UNKNOWN);
    return client && ok ? { clientId, orgId: client.orgId, roles: client.roles } : null;
  }

  /** The current principal of a client (a token outlives no change to the file). */
  principal(clientId: string): Principal | null {
    const client = this.current.clients.get(clientId);
    return client ? { clientId, orgId: client.orgId, roles: client.roles } : null;
  }

  /** The digest of a client's current secret (tokens carry it), or null for an unknown client. */
  secretVersion(clientId: string): string | null {
    return this.current.clients.get(clientId)?.secretVersion ?? null;
  }

  /** Client ids of an org holding any of `roles` (approvers). */
  withRoles(orgId: string, roles: readonly string[]): string[] {
    return [...this.current.clients].filter(([, c]) => c.orgId === orgId && c.roles.some((r) => roles.includes(r))).map(([id]) => id);
  }
}

function snapshot(entries: Record<string, z.infer<typeof clientSchema>>, raw: string): Snapshot {
  const clients = new Map(
    Object.entries(entries).map(([id, c]) => {
      const secretHash = sha256(c.secret);
      const secretVersion = createHmac('sha256', 'action-router secret version').update(secretHash).digest('base64url').slice(0, 16);
      return [id, { secretHash, secretVersion, orgId: c.orgId, roles: c.roles }];
    }),
  );
  return { clients, raw, fingerprint: createHmac('sha256', 'action-router api tokens').update(raw).digest() };
}

function read(path: string): Snapshot {
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
    // V8's message quotes the text around the error, which may be a secret: only where it is.
    const where = /position (\d+)/.exec((err as Error).message);
    throw new ConfigError('API_CLIENTS_FILE', `${path} is not valid JSON${where ? ` (at character ${where[1]})` : ''}`);
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
  return snapshot(parsed.data, raw);
}

const UNKNOWN = sha256('\u0000no such client\u0000');

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
