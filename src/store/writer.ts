import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { threadScript } from '../threads';
import type { Admin } from 'kafkajs';
import { StoreMetrics } from './metrics';
import { Applied, ApplyWaiters } from './waiters';
import type { Config } from '../config/config';
import { ConfigError, describeError } from '../errors';
import type { Logger } from '../log';
import type { FromWriter, WriterData } from './writer-protocol';

/** A store with updates waiting and nothing applied for this long is stalled (readiness false). */
const STALL_MS = 15_000;
/** How often the topic's end is read, so that the lag is known even when the writer says nothing. */
const LAG_PROBE_MS = 5_000;
/** A writer that ended is started again after this long (doubling up to the maximum). */
const RESTART_MS = { first: 250, max: 10_000 };
/** Records a transaction takes at most, and how long it waits for more. */
const BATCH = { maxUpdates: 5_000, maxWaitMs: 0 };

export type { Applied } from './waiters';

export interface StoreHealth {
  ok: boolean;
  reason?: string;
}

export interface StoreWriterDeps {
  config: Config;
  admin: Admin;
  logger: Logger;
  metrics: StoreMetrics;
}


/**
 * The routing thread's side of the run store's writer: starts the writer
 * thread, starts it again when it ends, and turns its messages into what
 * the API and the console wait on (a write applied, a run appearing, the
 * store caught up) and into readiness and metrics. Emits `opened` when the
 * writer opened a (new) file, `applied` with the run ids of each
 * transaction and `dead-letters` with the orgs of new letters.
 */
export class StoreWriter extends EventEmitter {
  readonly path: string;
  private worker: Worker | null = null;
  private readonly waiters = new ApplyWaiters();
  private readonly caughtUp: Promise<void>;
  private markCaughtUp: () => void = () => undefined;
  private stopping = false;
  private running = false;
  private failing: string | null = null;
  private restartWait = RESTART_MS.first;
  private restartTimer: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;
  /** Per partition: the next offset applied, and the topic's end as last seen. */
  private readonly next = new Map<number, bigint>();
  private readonly high = new Map<number, bigint>();
  private lastProgress = Date.now();
  private stopped: (() => void) | null = null;
  /** The running writer thread's kernel id and nice value (RUNS_WRITER_NICE), as it said at start. */
  thread: { tid: number | null; nice: number | null } | null = null;

  constructor(private readonly deps: StoreWriterDeps) {
    super();
    this.setMaxListeners(0);
    this.path = deps.config.store.path;
    this.caughtUp = new Promise((r) => (this.markCaughtUp = r));
  }

  /** Starts the writer and resolves once it consumes (the store may still be catching up). */
  async start(): Promise<void> {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
    } catch (err) {
      throw new ConfigError('RUNS_DB_PATH', `cannot create the run store's folder: ${describeError(err)}`);
    }
    await new Promise<void>((resolveStart, rejectStart) => this.spawn({ resolve: resolveStart, reject: rejectStart }));
    this.probe = setInterval(() => void this.probeLag(), LAG_PROBE_MS).unref();
  }

  private spawn(first?: { resolve: () => void; reject: (err: unknown) => void }): void {
    const { config, logger } = this.deps;
    const data: WriterData = {
      config,
      path: this.path,
      logLevel: logger.level,
      maxUpdates: BATCH.maxUpdates,
      maxWaitMs: BATCH.maxWaitMs,
      // Measured (600k updates, RunWriter alone): a 64 MB cache and a 256 MB map gave 37k updates/s at
      // 398 MB peak RSS; 16 MB and no map 41k at 146 MB. Appends hardly reread pages; the map only grew RSS.
      cacheMb: 16,
      mmapMb: 0,
      nice: config.store.writerNice,
    };
    const worker = new Worker(threadScript(__dirname, 'writer-thread', 'the run store writer'), { workerData: data, stdout: false, stderr: false });
    this.worker = worker;
    let opened = false;
    worker.on('message', (m: FromWriter) => {
      if (m.type === 'opened') opened = true;
      if (m.type === 'started') {
        this.running = true;
        this.restartWait = RESTART_MS.first;
        this.deps.metrics.up.set(1);
        first?.resolve();
        first = undefined;
      }
      this.onMessage(m);
    });
    worker.on('error', (err) => {
      logger.error({ err: describeError(err) }, 'run store writer thread failed');
      if (first) {
        first.reject(opened ? err : new ConfigError('RUNS_DB_PATH', `cannot open the run store ${this.path}: ${describeError(err)}`));
        first = undefined;
      }
    });
    worker.on('exit', (code) => {
      this.worker = null;
      this.running = false;
      this.deps.metrics.up.set(0);
      if (this.stopping) {
        this.stopped?.();
        return;
      }
      if (first) {
        first.reject(new Error(`the run store writer ended at start (exit ${code})`));
        first = undefined;
        return;
      }
      this.failing ??= `the writer thread ended (exit ${code}); starting it again`;
      logger.warn({ code, inMs: this.restartWait }, 'run store writer thread ended; starting it again');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.deps.metrics.restarts.inc();
        this.spawn();
      }, this.restartWait);
      this.restartTimer.unref();
      this.restartWait = Math.min(RESTART_MS.max, this.restartWait * 2);
    });
  }

  private onMessage(m: FromWriter): void {
    const { metrics } = this.deps;
    switch (m.type) {
      case 'opened':
        // A file begun anew (moved aside, or its status topic recreated) holds nothing yet.
        if (m.rebuilt) this.emit('rebuilding', 'the store file is begun anew');
        this.emit('opened', m);
        break;
      case 'started':
        this.thread = m.thread;
        this.deps.logger.debug({ thread: m.thread }, 'run store writer thread started');
        this.failing = null;
        this.lastProgress = Date.now();
        this.takePositions(m.positions);
        break;
      case 'caught-up':
        this.markCaughtUp();
        break;
      case 'applied': {
        this.lastProgress = Date.now();
        for (const [result, n] of Object.entries(m.counts)) metrics.applied.inc({ result }, n);
        metrics.transaction.observe(m.seconds);
        this.takePositions(m.positions);
        for (const [mark, result, partition, offset] of m.marks) this.waiters.applied(mark, { result, partition, offset: BigInt(offset) });
        this.waiters.touched(m.runIds);
        if (m.runIds.length > 0) this.emit('applied', m.runIds, m.orgIds);
        break;
      }
      case 'dead-letters':
        this.emit('dead-letters', m.orgs);
        break;
      case 'fetched':
        metrics.fetched.inc(m.count);
        break;
      case 'failing':
        this.failing = m.reason;
        metrics.up.set(0);
        break;
      case 'recovered':
        this.failing = null;
        metrics.up.set(1);
        break;
      case 'rebuild':
        this.failing = m.reason;
        this.deps.logger.error({ RUNS_DB_PATH: this.path, reason: m.reason }, 'run store file unusable: the writer starts again on a new file, rebuilt from the status topic');
        // The new file is caught up from the start of the topic: positions start again.
        this.next.clear();
        this.restartWait = RESTART_MS.first;
        // Before the new, empty file is read: what it does not hold yet must not read as "never seen" (stage "once").
        this.emit('rebuilding', m.reason);
        break;
      case 'stopped':
        // Its consumers and file are closed: end the thread (kafkajs may leave a timer behind).
        void this.worker?.terminate();
        break;
    }
  }

  private takePositions(positions: [number, string, string][]): void {
    for (const [p, next, high] of positions) {
      this.next.set(p, BigInt(next));
      const h = BigInt(high);
      if (h > (this.high.get(p) ?? 0n)) this.high.set(p, h);
    }
    this.updateLag();
  }

  private updateLag(): void {
    for (const [p, high] of this.high) {
      const next = this.next.get(p) ?? 0n;
      this.deps.metrics.lag.set({ partition: String(p) }, Number(high > next ? high - next : 0n));
    }
  }

  /** The topic's end, read by the routing thread: the lag is counted even while the writer is stuck or down. */
  private async probeLag(): Promise<void> {
    try {
      const offsets = await this.deps.admin.fetchTopicOffsets(this.deps.config.topics.status);
      for (const o of offsets) {
        const h = BigInt(o.high);
        if (h > (this.high.get(o.partition) ?? 0n)) this.high.set(o.partition, h);
      }
      this.updateLag();
    } catch {
      /* the broker is away: the router's own readiness says so */
    }
  }

  private waiting(): bigint {
    let n = 0n;
    for (const [p, high] of this.high) {
      const next = this.next.get(p) ?? 0n;
      if (high > next) n += high - next;
    }
    return n;
  }

  /** Whether the store applies: false while the writer fails, restarts, or has stalled with updates waiting. */
  health(): StoreHealth {
    if (!this.running && !this.stopping) return { ok: false, reason: this.failing ?? 'the run store writer is starting' };
    if (this.failing) return { ok: false, reason: `the run store cannot apply: ${this.failing}` };
    const waiting = this.waiting();
    const idle = Date.now() - this.lastProgress;
    if (waiting > 0n && idle > STALL_MS) return { ok: false, reason: `the run store has applied nothing for ${Math.round(idle / 1000)} s with ${waiting} updates waiting` };
    return { ok: true };
  }

  /** Resolves once the store holds everything that was on the topic when the writer started. */
  whenCaughtUp(): Promise<void> {
    return this.caughtUp;
  }

  /**
   * Resolves once the store applied every status-topic partition up to
   * `ends` (partition to offset: the topic's end at some moment), true; or
   * false when `timeoutMs` passes first. Polls the positions the writer
   * reports after each transaction.
   */
  async appliedThrough(ends: Map<number, bigint>, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const done = () => [...ends].every(([p, end]) => end <= 0n || (this.next.get(p) ?? 0n) >= end);
    while (!done()) {
      if (Date.now() >= deadline || signal?.aborted) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  }

  /** Waits until the store applied the update marked `mark` (see ApplyWaiters.awaitApplied). */
  awaitApplied(mark: string, timeoutMs: number): { applied: Promise<Applied | 'timeout'>; cancel: () => void } {
    return this.waiters.awaitApplied(mark, timeoutMs);
  }

  /** Waits until an update of `runId` is applied, or `timeoutMs` passes. */
  awaitRun(runId: string, timeoutMs: number): Promise<void> {
    return this.waiters.awaitRun(runId, timeoutMs);
  }

  /** Writes waiting for the store to apply them right now. */
  get markWaitCount(): number {
    return this.waiters.markWaitCount;
  }

  /** Runs waited for right now (bounded by the API). */
  get runWaitCount(): number {
    return this.waiters.runWaitCount;
  }

  /** Ends the writer thread at once, as a crash would (tests). */
  async crashForTest(): Promise<void> {
    await this.worker?.terminate();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.probe) clearInterval(this.probe);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    const ended = new Promise<void>((r) => (this.stopped = r));
    worker.postMessage({ type: 'stop' });
    const timeout = setTimeout(() => void worker.terminate(), 10_000);
    await ended;
    clearTimeout(timeout);
  }
}
