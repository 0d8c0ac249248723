import { setMaxListeners } from 'node:events';
import type { Consumer } from 'kafkajs';
import type { Config } from '../config/config';
import { describeError } from '../errors';
import type { Logger } from '../log';
import type { RouterMetrics } from '../metrics/metrics';
import { OffsetWindow } from './offset-window';

/** One assigned (or revoked, still draining) partition. */
export interface PartitionState {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  readonly window: OffsetWindow;
  lastCommitted: bigint | null;
  /** Aborts this partition's work (revocation past the grace, shutdown past the grace). */
  readonly abort: AbortController;
  /** Set while the partition is paused for backpressure: resumes fetching it. */
  resume: (() => void) | null;
}

/** What admitting a message came to. */
export type Admission = 'admitted' | 'seen' | 'full';

/**
 * Partition bookkeeping: each partition's offset window, admission against
 * the in-flight limits (a full window pauses the partition until there is
 * room again), revocation with its grace, and the committer. Only the
 * low-water mark is committed, so an offset is committed only once the
 * outcome of it and of everything before it is acknowledged.
 */
export class PartitionBook {
  private readonly partitions = new Map<string, PartitionState>();
  /**
   * Partitions taken away by a rebalance whose runs are still finishing.
   * What they finish is still committed (the coordinator takes commits from
   * any member of the current generation; a commit only ever covers runs
   * whose outcome is acknowledged, so it can cause duplicates, never loss).
   */
  private readonly revoked = new Map<string, PartitionState>();
  private total = 0;
  private committing: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  /** No partition is resumed any more (the router is stopping). */
  private frozen = false;
  /** Set once the consumer exists: commits go through it. */
  consumer: Consumer | null = null;

  constructor(
    private readonly window: Config['window'],
    private readonly metrics: RouterMetrics,
    private readonly logger: Logger,
  ) {}

  get inFlight(): number {
    return this.total;
  }

  /** The topics of the partitions assigned now. */
  topics(): string[] {
    return [...new Set([...this.partitions.values()].map((s) => s.topic))];
  }

  state(topic: string, partition: number): PartitionState {
    const key = `${topic}:${partition}`;
    let state = this.partitions.get(key);
    if (!state) {
      const abort = new AbortController();
      // Every run in flight listens on its partition's signal.
      setMaxListeners(0, abort.signal);
      state = { key, topic, partition, window: new OffsetWindow(), lastCommitted: null, abort, resume: null };
      this.partitions.set(key, state);
    }
    return state;
  }

  /**
   * Takes `offset` into the partition's window: 'seen' when it is in flight
   * or done already (re-fetched after a rejoin), 'full' when a limit is
   * reached (the caller pauses the partition and stops reading the batch).
   */
  admit(state: PartitionState, offset: bigint): Admission {
    if (state.window.seen(offset)) return 'seen';
    const { maxInFlightPerPartition, maxInFlight } = this.window;
    if (state.window.inFlight >= maxInFlightPerPartition || this.total >= maxInFlight) return 'full';
    state.window.add(offset);
    this.total++;
    this.gauge(state);
    return 'admitted';
  }

  /** A message's work ended: `done` completes its offset; otherwise it stays uncommitted and is redelivered. */
  settle(state: PartitionState, offset: bigint, done: boolean): void {
    if (done) state.window.complete(offset);
    this.total--;
    this.gauge(state);
    const { maxInFlightPerPartition, maxInFlight } = this.window;
    if (!this.frozen && this.total <= (maxInFlight * 3) / 4) {
      for (const s of this.partitions.values()) {
        if (s.resume && s.window.inFlight <= (maxInFlightPerPartition * 3) / 4) {
          const resume = s.resume;
          s.resume = null;
          resume();
        }
      }
    }
    // A revoked partition that has drained: commit what it finished (the commit then forgets it).
    if (state.window.inFlight === 0 && this.revoked.get(state.key) === state) void this.commit();
    if (this.total === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  private gauge(state: PartitionState): void {
    this.metrics.inFlight.set({ topic: state.topic, partition: String(state.partition) }, state.window.inFlight);
  }

  /**
   * A new assignment: partitions no longer owned are revoked. No new work is
   * taken from them (kafkajs stopped fetching them); their runs in flight
   * get the grace period to finish, and what they finish is committed. The
   * rest is aborted and redelivered to the new owner (receivers deduplicate
   * by run id).
   */
  assign(owned: ReadonlySet<string>): void {
    // Back with us before its old runs finished: the fresh state commits
    // from now on, the old one must not move the offset any more.
    for (const key of owned) this.revoked.delete(key);
    for (const [key, state] of this.partitions) {
      if (owned.has(key)) continue;
      this.partitions.delete(key);
      // kafkajs keeps a paused partition paused across rebalances: resume it,
      // or it would never be fetched again if it comes back to us.
      state.resume?.();
      state.resume = null;
      this.logger.info({ partition: state.partition, inFlight: state.window.inFlight }, 'partition revoked');
      // Kept until what it finished is committed (the commit forgets it then).
      this.revoked.set(key, state);
      if (state.window.inFlight === 0) void this.commit();
      else setTimeout(() => state.abort.abort(), this.window.shutdownGraceMs).unref();
    }
  }

  /** Commits every partition's low-water mark that moved since the last commit. */
  commit(): Promise<void> {
    if (this.committing) return this.committing;
    const consumer = this.consumer;
    const todo = [...this.partitions.values(), ...this.revoked.values()].filter(
      (s) => s.window.committable !== null && s.window.committable !== s.lastCommitted,
    );
    if (!consumer || todo.length === 0) {
      this.forgetDrainedRevoked();
      return Promise.resolve();
    }
    const marks = todo.map((s) => s.window.committable!);
    const offsets = todo.map((s, i) => ({ topic: s.topic, partition: s.partition, offset: String(marks[i]) }));
    this.committing = consumer
      .commitOffsets(offsets)
      .then(() => {
        todo.forEach((s, i) => {
          s.lastCommitted = marks[i]!;
          this.metrics.committed.set({ topic: s.topic, partition: String(s.partition) }, Number(marks[i]));
        });
        this.forgetDrainedRevoked();
      })
      .catch((err: unknown) => this.logger.warn({ err: describeError(err) }, 'offset commit failed; will retry'))
      .finally(() => {
        this.committing = null;
      });
    return this.committing;
  }

  /** Revoked partitions with nothing in flight and everything committed; their metric series go with them. */
  private forgetDrainedRevoked(): void {
    for (const [key, s] of this.revoked) {
      if (s.window.inFlight !== 0 || s.lastCommitted !== s.window.committable) continue;
      this.revoked.delete(key);
      // Another instance owns it now: its series here would only repeat a stale value.
      if (!this.partitions.has(key)) {
        const labels = { topic: s.topic, partition: String(s.partition) };
        this.metrics.inFlight.remove(labels);
        this.metrics.committed.remove(labels);
        this.metrics.lag.remove(labels);
      }
    }
  }

  /** Resolves true once nothing is in flight, false after `ms`. */
  waitIdle(ms: number): Promise<boolean> {
    if (this.total === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Stopping: nothing is resumed any more. */
  freeze(): void {
    this.frozen = true;
  }

  /** Aborts the work of every partition, assigned or draining. */
  abortAll(): void {
    for (const s of [...this.partitions.values(), ...this.revoked.values()]) s.abort.abort();
  }

  /** The commit under way and one more, for what finished since. */
  async finalCommit(): Promise<void> {
    if (this.committing) await this.committing;
    await this.commit();
  }
}
