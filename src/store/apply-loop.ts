import { EventEmitter } from 'node:events';
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { resumePositions, startMirrorConsumer } from './mirror';
import { Counter, Gauge, Registry } from 'prom-client';
import type { StatusCodec } from '../codec/status-codec';
import { describeError } from '../errors';
import type { Logger } from '../log';
import type { RunStatusUpdate } from '../model/status';
import { ApplyResult, RunStore, StoreEntry } from './run-store';

/** The header an API write carries so that the loop remembers what applying it did. */
export const WATCH_HEADER = 'x-store-watch';

export class StoreMetrics {
  readonly applied: Counter<'result'>;
  readonly lag: Gauge<'partition'>;
  constructor(registry: Registry) {
    this.applied = new Counter({
      name: 'action_router_store_updates_total',
      help: 'Status updates read by the run store, by result (applied; ignored: after the run ended, or a claim that lost; undecodable)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.lag = new Gauge({
      name: 'action_router_store_lag',
      help: 'Status updates on the topic not yet applied to the run store, by partition',
      labelNames: ['partition'],
      registers: [registry],
    });
  }
}

export interface ApplyLoopDeps {
  kafka: Kafka;
  admin: Admin;
  store: RunStore;
  codec: StatusCodec;
  logger: Logger;
  metrics: StoreMetrics;
}

/** What applying a watched update did, and where it was on the topic. */
export interface Applied {
  result: ApplyResult;
  partition: number;
  offset: bigint;
}

/**
 * Materializes the status topic into the run store. Every instance reads
 * every partition (a consumer group of its own, nothing committed: the
 * store's offsets are the position), so any instance answers any query.
 * Emits `applied` with the run ids of each transaction (the console's
 * live feed) once it is committed.
 */
export class ApplyLoop extends EventEmitter {
  private consumer: Consumer | null = null;
  private readonly next = new Map<number, bigint>();
  private readonly markWaiters = new Map<string, (applied: Applied) => void>();
  private readonly runWaiters = new Map<string, (() => void)[]>();
  private caughtUp!: Promise<void>;
  private readonly highAtStart = new Map<number, bigint>();
  private markCaughtUp: () => void = () => undefined;
  private stopped = false;

  constructor(private readonly deps: ApplyLoopDeps) {
    super();
    this.setMaxListeners(0);
  }

  async start(): Promise<void> {
    const { kafka, admin, store, logger } = this.deps;
    const topic = store.topic;
    const { marks, stored } = await resumePositions(admin, store, logger, 'the run store is ahead of the status topic (was it recreated?): rebuilding the store');
    for (const m of marks) {
      const at = stored.get(m.partition) ?? 0n;
      this.next.set(m.partition, at);
      if (at < BigInt(m.low)) {
        logger.warn(
          { partition: m.partition, storedNext: String(at), firstOnTopic: m.low },
          'status updates were deleted by retention before the store applied them: runs they described may be missing or incomplete',
        );
      }
      this.highAtStart.set(m.partition, BigInt(m.high));
    }
    this.caughtUp = new Promise((resolve) => (this.markCaughtUp = resolve));
    this.checkCaughtUp();
    this.consumer = await startMirrorConsumer(kafka, topic, stored, {
      groupPrefix: 'action-router-store',
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 1024 * 1024,
      stopped: () => this.stopped,
      logger,
      what: 'run store',
      eachBatch: (payload) => this.eachBatch(payload),
    });
    logger.info({ topic, runs: store.count(), rebuilt: store.rebuilt }, 'run store applying the status topic');
  }

  private async eachBatch({ batch }: EachBatchPayload): Promise<void> {
    const { store, codec, metrics, logger } = this.deps;
    const entries: StoreEntry[] = [];
    const watch = new Map<bigint, string>();
    for (const m of batch.messages) {
      const offset = BigInt(m.offset);
      let update: RunStatusUpdate | null = null;
      if (m.value) {
        try {
          update = await codec.decode(m.value);
          if (typeof update.runId !== 'string' || typeof update.status !== 'string' || typeof update.at !== 'number') update = null;
        } catch (err) {
          logger.warn({ partition: batch.partition, offset: m.offset, err: describeError(err) }, 'status update does not decode; the store passes it over');
        }
      }
      entries.push({ offset, update });
      const mark = m.headers?.[WATCH_HEADER];
      if (mark) watch.set(offset, String(mark));
    }
    const results = store.applyBatch(batch.partition, entries);
    for (const [offset, result] of results) {
      metrics.applied.inc({ result });
      const mark = watch.get(offset);
      if (mark) this.remember(mark, { result, partition: batch.partition, offset });
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last) {
      this.next.set(batch.partition, BigInt(last.offset) + 1n);
      metrics.lag.set({ partition: String(batch.partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n)));
    }
    this.wake(entries);
  }

  /** Marks of other instances' writes have no waiter here. */
  private remember(mark: string, applied: Applied): void {
    const waiter = this.markWaiters.get(mark);
    if (!waiter) return;
    this.markWaiters.delete(mark);
    waiter(applied);
  }

  private wake(entries: readonly StoreEntry[]): void {
    const runIds = new Set<string>();
    for (const e of entries) if (e.update) runIds.add(e.update.runId);
    for (const id of runIds) {
      const ws = this.runWaiters.get(id);
      if (ws) [...ws].forEach((w) => w());
    }
    this.checkCaughtUp();
    if (runIds.size > 0) this.emit('applied', [...runIds]);
  }

  private checkCaughtUp(): void {
    for (const [p, high] of this.highAtStart) if ((this.next.get(p) ?? 0n) < high) return;
    this.markCaughtUp();
  }

  /** Resolves once the store holds everything that was on the topic when it started. */
  whenCaughtUp(): Promise<void> {
    return this.caughtUp;
  }

  /**
   * Waits until the store applied the update marked `mark` (WATCH_HEADER)
   * and says what applying it did and where it was. Call it before the
   * write: the store may apply it before the broker's ack arrives.
   */
  awaitApplied(mark: string, timeoutMs: number): Promise<Applied | 'timeout'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.markWaiters.delete(mark);
        resolve('timeout');
      }, timeoutMs);
      this.markWaiters.set(mark, (applied) => {
        clearTimeout(timer);
        resolve(applied);
      });
    });
  }

  /** Waits until an update of `runId` is applied, or `timeoutMs` passes. */
  awaitRun(runId: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const list = this.runWaiters.get(runId) ?? [];
      const done = () => {
        clearTimeout(timer);
        const rest = (this.runWaiters.get(runId) ?? []).filter((w) => w !== done);
        if (rest.length) this.runWaiters.set(runId, rest);
        else this.runWaiters.delete(runId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      list.push(done);
      this.runWaiters.set(runId, list);
    });
  }

  /** Runs waited for right now (bounded by the API). */
  get runWaitCount(): number {
    let n = 0;
    for (const ws of this.runWaiters.values()) n += ws.length;
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer?.stop().catch(() => undefined);
    await this.consumer?.disconnect().catch(() => undefined);
    this.consumer = null;
  }
}
