import { Worker } from 'node:worker_threads';
import { StoreUnavailableError, describeError } from '../errors';
import { threadScript } from '../threads';
import type { Logger } from '../log';
import type { DeadLetterFilter, DeadLetterRow } from './dead-letters';
import type { Cursor, Overview, RunFilter, RunPage } from './queries';
import type { ListView, QueryRequest, QueryResponse } from './query-protocol';

/** A query answers within this or the request gets 503. */
export const QUERY_BUDGET_MS = 3_000;
/** A thread busy on one query this long is replaced (SQLite cannot be interrupted from outside). */
const STUCK_MS = 10_000;
/** Queries waiting at once; more are refused at once (503). */
const MAX_QUEUED = 64;

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
type Query = Distribute<QueryRequest>;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
  sentAt: number;
}


/** A stored letter's bytes come back from the thread as Uint8Array. */
function asBuffer(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  const u = v as Uint8Array;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * The list queries of the API and the console, answered by the query
 * thread. Each has a time budget; a thread stuck on a query is replaced.
 */
export class QueryPool {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private watchdog: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly dlqTopic: string,
    private readonly logger: Logger,
    /** The catalog's action titles, shown in the views the thread builds. */
    private readonly titles: Record<string, string> = {},
  ) {}

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(threadScript(__dirname, 'query-thread', 'the run store query thread'), { workerData: { path: this.path, dlqTopic: this.dlqTopic, titles: this.titles } });
    worker.on('message', (r: QueryResponse) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      clearTimeout(p.timer);
      if (r.ok) p.resolve(r.value);
      else p.reject(Object.assign(new Error(r.message), { code: r.code }));
    });
    worker.on('error', (err) => this.logger.error({ err: describeError(err) }, 'run store query thread failed'));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = null;
      this.failAll('the query thread ended');
    });
    worker.unref();
    this.worker = worker;
    this.watchdog ??= setInterval(() => this.checkStuck(), 1_000).unref();
    return worker;
  }

  private failAll(reason: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new StoreUnavailableError(`run store query failed: ${reason}`));
      this.pending.delete(id);
    }
  }

  private checkStuck(): void {
    const oldest = Math.min(...[...this.pending.values()].map((p) => p.sentAt));
    if (this.worker && Number.isFinite(oldest) && Date.now() - oldest > STUCK_MS) {
      this.logger.warn({ ms: Date.now() - oldest }, 'run store query thread stuck on a query: replacing it');
      const stuck = this.worker;
      this.worker = null;
      this.failAll('it ran past its budget');
      void stuck.terminate();
    }
  }

  private ask<T>(q: Query): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the run store is closed'));
    if (this.pending.size >= MAX_QUEUED) return Promise.reject(new StoreUnavailableError('too many run store queries at once; try again'));
    const id = this.nextId++;
    return new Promise<T>((resolveQuery, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new StoreUnavailableError(`the query ran past its ${QUERY_BUDGET_MS} ms budget`));
      }, QUERY_BUDGET_MS);
      this.pending.set(id, { resolve: resolveQuery as (v: unknown) => void, reject, timer, sentAt: Date.now() });
      this.thread().postMessage({ ...q, id });
    });
  }

  listRuns(filter: RunFilter, page: { limit: number; offset?: number; cursor?: Cursor }): Promise<RunPage> {
    return this.ask({ name: 'listRuns', filter, page });
  }

  /** A page as the API's JSON body, built and serialised in the thread. */
  async listRunsJson(filter: RunFilter, page: { limit: number; offset?: number; cursor?: Cursor }, view: ListView): Promise<Buffer> {
    return asBuffer(await this.ask<Uint8Array>({ name: 'listRunsJson', filter, page, view }))!;
  }

  countRuns(filter: RunFilter): Promise<{ total: number; capped: boolean }> {
    return this.ask({ name: 'countRuns', filter });
  }

  overview(orgId: string | undefined, now: number, minutes: number): Promise<Overview> {
    return this.ask({ name: 'overview', orgId, now, minutes });
  }

  async deadLetters(filter: DeadLetterFilter): Promise<DeadLetterRow[]> {
    const rows = await this.ask<DeadLetterRow[]>({ name: 'deadLetters', filter });
    return rows.map((r) => ({ ...r, key: asBuffer(r.key), value: asBuffer(r.value) }));
  }

  deadLetterReasons(orgId: string | undefined): Promise<{ reason: string; count: number }[]> {
    return this.ask({ name: 'deadLetterReasons', orgId });
  }

  /** The writer moved to a new file: connect to it. */
  reopen(): void {
    if (this.worker) void this.ask({ name: 'reopen' }).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.failAll('the store is closing');
    await this.worker?.terminate();
    this.worker = null;
  }
}
