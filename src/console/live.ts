import type { ServerResponse } from 'node:http';
import { Principal, canSee } from '../access/principal';
import type { RunsService } from '../api/service';
import type { JsonObject } from '../model/json';
import { runSummary } from './views';

export interface LiveOptions {
  /** At most this many open streams; more get 503. */
  maxClients: number;
  /** At most this many open streams per API client (one client cannot take them all). */
  maxPerClient: number;
  /** At most this many open streams per org (one org cannot take them all). */
  maxPerOrg: number;
  /** Changes are gathered this long, then sent as one event. */
  flushMs: number;
  /** A comment line this often keeps proxies from closing an idle stream, and re-checks the client. */
  heartbeatMs: number;
  /** More changed runs than this in one flush: clients are told to reload instead. */
  maxRunsPerEvent: number;
}

const DEFAULTS: LiveOptions = { maxClients: 500, maxPerClient: 20, maxPerOrg: 100, flushMs: 100, heartbeatMs: 15_000, maxRunsPerEvent: 500 };

/** A stream whose reader is this far behind is closed (it reconnects and reloads). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

interface Client {
  /** Kept current: a change of roles in the clients file applies to open streams too. */
  principal: Principal;
  /** The client's secret when the stream opened: a new one ends it. */
  secretVersion: string | null;
  res: ServerResponse;
  /** When the session or token ends. */
  until: number;
}

/**
 * The console's live feed (Server-Sent Events). Fed by the apply loop's
 * `applied` events: each flush reads the changed runs from the store once
 * and sends every client the ones it may see. No client polls the database.
 *
 * Events: `runs` (run summaries), `reload` (too many changes at once),
 * `dead-letters` (new letters; the page fetches them).
 */
export class LiveFeed {
  private readonly clients = new Set<Client>();
  /** Changed runs since the last flush, with their org. */
  private readonly changed = new Map<string, string | null>();
  private readonly deadLetterOrgs = new Set<string | null>();
  private timer: NodeJS.Timeout | null = null;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly options: LiveOptions;
  private readonly onApplied = (ids: string[], orgs: (string | null)[]) => this.queue(ids, orgs);
  private readonly onClientsChanged = () => this.recheck(Date.now());
  private readonly onDeadLetters = (orgs: (string | null)[]) => {
    orgs.forEach((o) => this.deadLetterOrgs.add(o));
    this.schedule();
  };

  constructor(
    private readonly runs: RunsService,
    options: Partial<LiveOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    runs.writer.on('applied', this.onApplied);
    runs.writer.on('dead-letters', this.onDeadLetters);
    runs.clients.on('changed', this.onClientsChanged);
    runs.signOuts?.on('ended', this.onClientsChanged);
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs).unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** True when no stream more may open, or none more for this client or its org. */
  full(principal: Principal): boolean {
    if (this.clients.size >= this.options.maxClients) return true;
    let mine = 0;
    let org = 0;
    for (const c of this.clients) {
      if (c.principal.clientId === principal.clientId) mine++;
      if (c.principal.orgId === principal.orgId) org++;
    }
    return mine >= this.options.maxPerClient || org >= this.options.maxPerOrg;
  }

  /** Takes over `res` as an event stream for `principal` (check `full` first). */
  open(res: ServerResponse, principal: Principal, until: number): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Proxies (nginx) must pass events on at once.
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ clientId: principal.clientId })}\n\n`);
    const client: Client = { principal, res, until, secretVersion: this.runs.clients.secretVersion(principal.clientId) };
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
  }

  private queue(ids: readonly string[], orgs: readonly (string | null)[]): void {
    ids.forEach((id, i) => this.changed.set(id, orgs[i] ?? null));
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.clients.size === 0) {
      if (this.clients.size === 0) {
        this.changed.clear();
        this.deadLetterOrgs.clear();
      }
      return;
    }
    this.timer = setTimeout(() => this.flush(), this.options.flushMs);
  }

  private flush(): void {
    this.timer = null;
    const changed = [...this.changed];
    const letterOrgs = [...this.deadLetterOrgs];
    this.changed.clear();
    this.deadLetterOrgs.clear();
    if (changed.length > 0) {
      // Each stream hears of its org's runs only: a count, or the summaries (each run read once for all streams).
      const summaries = new Map<string, JsonObject | null>();
      const summary = (id: string) => {
        if (!summaries.has(id)) {
          const row = this.runs.store.getRun(id);
          summaries.set(id, row ? runSummary(row) : null);
        }
        return summaries.get(id)!;
      };
      for (const c of this.clients) {
        const mine = changed.filter(([, org]) => canSee(c.principal, org));
        if (mine.length > this.options.maxRunsPerEvent) this.send(c, 'reload', { runs: mine.length });
        else if (mine.length > 0) {
          const visible = mine.map(([id]) => summary(id)).filter((s): s is JsonObject => s !== null && canSee(c.principal, s.orgId as string | null));
          if (visible.length > 0) this.send(c, 'runs', visible);
        }
      }
    }
    if (letterOrgs.length > 0) {
      for (const c of this.clients) {
        // Letters without an org are an operator's to see.
        const added = letterOrgs.filter((o) => canSee(c.principal, o)).length;
        if (added > 0) this.send(c, 'dead-letters', { added });
      }
    }
  }

  private send(c: Client, event: string, data: unknown): void {
    if (c.res.writableLength > MAX_BUFFERED_BYTES) {
      c.res.destroy();
      this.clients.delete(c);
      return;
    }
    c.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Keeps streams open, and ends those of expired sessions and of clients the file no longer has as they were. */
  private beat(): void {
    for (const c of this.recheck(Date.now())) c.res.write(': keep-alive\n\n');
  }

  /** Ends the streams whose session ended or was signed out (on any instance), or whose client was removed, moved to another org or given a new secret; the others, with their current roles. */
  private recheck(now: number): Client[] {
    const kept: Client[] = [];
    for (const c of this.clients) {
      const current = this.runs.clients.principal(c.principal.clientId);
      const signedOut = c.principal.tokenId !== undefined && this.runs.signOuts?.has(c.principal.tokenId) === true;
      if (now >= c.until || signedOut || !current || current.orgId !== c.principal.orgId || this.runs.clients.secretVersion(current.clientId) !== c.secretVersion) {
        c.res.end();
        this.clients.delete(c);
        continue;
      }
      c.principal = { ...current, expiresAt: c.principal.expiresAt, ...(c.principal.tokenId ? { tokenId: c.principal.tokenId } : {}) };
      kept.push(c);
    }
    return kept;
  }

  close(): void {
    clearInterval(this.heartbeat);
    if (this.timer) clearTimeout(this.timer);
    this.runs.writer.off('applied', this.onApplied);
    this.runs.writer.off('dead-letters', this.onDeadLetters);
    this.runs.clients.off('changed', this.onClientsChanged);
    this.runs.signOuts?.off('ended', this.onClientsChanged);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }
}
