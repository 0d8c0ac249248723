import type { Admin } from 'kafkajs';
import { describeError } from './errors';
import type { Logger } from './log';
import type { RouterMetrics } from './metrics/metrics';
import { sleep, waitFor } from './net/retry';
import type { CallLedger, CallRecord } from './router/stages/once';
import type { RunStoreService } from './store/service';

/** Past this long behind, readiness turns false (the wait goes on: nothing is called unchecked). */
export const STORE_WAIT_WARN_MS = 30_000;

/** At most this many records kept between stages "resolve" and "once" (thousands of runs in flight at most). */
const KEPT_MAX = 10_000;

/**
 * The run store as the router's memory of calls (stage "once"). At every
 * assignment the status topic's end is read: each outcome acknowledged
 * before the assignment (by this process before a crash, or by the
 * partition's previous owner) lies below it. Runs are checked only once the
 * store has applied the topic up to there. A run's trigger and its updates
 * live on different topics, and the updates of one run all go to one
 * status partition (keyed by run id): the end of every status partition is
 * waited for, since any of them may hold a run of the new partitions.
 */
export class StoreCallLedger implements CallLedger {
  private caughtUp: Promise<void> = Promise.resolve();
  private generation = 0;
  /** Whether the store is current for the partitions owned now (the gate is open). */
  private open = false;
  /** Records read for stage "resolve" while the gate was open, for stage "once" to take. */
  private readonly kept = new Map<string, { record: CallRecord | undefined; generation: number }>();
  /** When the store fell behind an assignment, while it is still behind. */
  private behindSince: number | null = null;

  constructor(
    private readonly deps: {
      admin: Admin;
      statusTopic: string;
      runs: RunStoreService;
      metrics: RouterMetrics;
      logger: Logger;
      doubtMs: number;
    },
  ) {
    // A store rebuilt from the status topic forgets every run until it has applied the topic again:
    // runs wait for that, as after an assignment (redelivered triggers may still be on their way).
    deps.runs.writer.on('rebuilding', (reason: string) => {
      deps.logger.info({ reason }, 'the run store begins anew from the status topic: runs are not called until it holds the topic again');
      this.assigned();
    });
  }

  get doubtMs(): number {
    return this.deps.doubtMs;
  }

  /** Partitions were assigned (or the store is rebuilt): runs wait until the store holds what the status topic holds now. */
  assigned(): void {
    this.open = false;
    this.kept.clear();
    const generation = ++this.generation;
    this.caughtUp = this.catchUp(generation);
  }

  /** Ends the wait for the store (the router has stopped: no run is checked any more). */
  stop(): void {
    this.generation++;
    this.open = false;
    this.kept.clear();
    this.behindSince = null;
  }

  /** Why readiness is false, while the store is behind an assignment for longer than STORE_WAIT_WARN_MS. */
  problem(): string | null {
    if (this.behindSince === null) return null;
    const seconds = Math.round((Date.now() - this.behindSince) / 1000);
    return seconds * 1000 >= STORE_WAIT_WARN_MS ? `the run store is ${seconds} s behind the status topic: runs of newly assigned partitions wait for it` : null;
  }

  current(signal: AbortSignal): Promise<void> | undefined {
    return this.open ? undefined : this.caughtUpFor(signal);
  }

  private async caughtUpFor(signal: AbortSignal): Promise<void> {
    // A newer assignment ends an older wait early: wait again for the newest.
    for (;;) {
      const generation = this.generation;
      await waitFor(this.caughtUp, signal);
      if (generation === this.generation) return;
    }
  }

  /**
   * The run's owner (stage "resolve", RUN_ID_CONFLICT), from the same read
   * as its record: while the store is current, the record is kept for stage
   * "once", which comes next, so a run costs one read of the store, not two.
   */
  ownerOf(runId: string): string | null | undefined {
    let record: CallRecord | undefined;
    try {
      record = this.deps.runs.store.callRecord(runId);
    } catch {
      return undefined; // unreadable now (the file being replaced): not known; stage "once" waits for it
    }
    if (this.open) {
      // Entries of runs that went no further (refused, not this mode) are dropped in bulk.
      if (this.kept.size >= KEPT_MAX) this.kept.clear();
      this.kept.set(runId, { record, generation: this.generation });
    }
    return record?.orgId;
  }

  record(runId: string): CallRecord | undefined {
    const kept = this.kept.get(runId);
    if (kept) {
      this.kept.delete(runId);
      // Read while the store was current, in this assignment: nothing the gate waits for was missing from it.
      if (this.open && kept.generation === this.generation) return kept.record;
    }
    return this.deps.runs.store.callRecord(runId);
  }

  awaitRun(runId: string, ms: number): Promise<void> {
    return this.deps.runs.writer.awaitRun(runId, ms);
  }

  private async catchUp(generation: number): Promise<void> {
    const { admin, statusTopic, runs, metrics, logger } = this.deps;
    const started = Date.now();
    this.behindSince = started;
    let ends: Map<number, bigint> | null = null;
    let warned = false;
    // A newer assignment takes over the wait; this one ends with it.
    while (generation === this.generation) {
      try {
        ends ??= new Map((await admin.fetchTopicOffsets(statusTopic)).map((o) => [o.partition, BigInt(o.high)]));
        if (await runs.writer.appliedThrough(ends, 1_000)) break;
      } catch (err) {
        logger.warn({ err: describeError(err) }, "cannot read the status topic's end yet; runs of the new partitions wait");
        await sleep(1_000);
      }
      const waited = Date.now() - started;
      metrics.storeWait.set(waited / 1000);
      if (!warned && waited >= STORE_WAIT_WARN_MS) {
        warned = true;
        logger.warn({ seconds: Math.round(waited / 1000) }, 'the run store is behind the status topic: runs of newly assigned partitions are not called until it catches up');
      }
    }
    if (generation !== this.generation) return;
    this.open = true;
    this.behindSince = null;
    metrics.storeWait.set(0);
    if (warned) logger.info({ seconds: Math.round((Date.now() - started) / 1000) }, 'the run store caught up: routing the new partitions');
  }
}
