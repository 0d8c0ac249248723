import { setMaxListeners } from 'node:events';
import type { Logger } from '../log';
import { AbortedError } from '../net/retry';

/**
 * Work that continues after a run's outcome (a workflow run followed to its
 * end), one task per run, each owned by the trigger partition the run came
 * from: when the partition moves to another router, the task stops there
 * and the new owner follows the run again from the run store.
 */
export class Followers {
  private readonly all = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly byRun = new Map<string, { partition: number; abort: AbortController }>();

  constructor() {
    setMaxListeners(0, this.all.signal);
  }

  /** Aborted when the router stops: reports made after an outcome listen on it. */
  get signal(): AbortSignal {
    return this.all.signal;
  }

  has(runId: string): boolean {
    return this.byRun.has(runId);
  }

  /** Runs `task` in the background until it ends, the router stops, or its partition is revoked. */
  start(task: (signal: AbortSignal) => Promise<void>, logger: Logger, runId: string, partition: number): void {
    const abort = new AbortController();
    const stop = () => abort.abort();
    this.all.signal.addEventListener('abort', stop, { once: true });
    const entry = { partition, abort };
    this.byRun.set(runId, entry);
    const p = task(abort.signal)
      .catch((err: unknown) => {
        if (!(err instanceof AbortedError)) logger.error({ err }, 'follow-up task failed');
      })
      .finally(() => {
        this.running.delete(p);
        this.all.signal.removeEventListener('abort', stop);
        if (this.byRun.get(runId) === entry) this.byRun.delete(runId);
      });
    this.running.add(p);
  }

  /** Stops the tasks of partitions this router no longer owns. */
  keepOnly(owned: (partition: number) => boolean): void {
    for (const [runId, f] of this.byRun) {
      if (owned(f.partition)) continue;
      f.abort.abort();
      this.byRun.delete(runId);
    }
  }

  /** Stops every task and waits for them to end. */
  async stop(): Promise<void> {
    this.all.abort();
    await Promise.allSettled([...this.running]);
  }
}
