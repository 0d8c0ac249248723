import type { ApplyResult } from './run-writer';

/** What applying a watched update did, and where it was on the topic. */
export interface Applied {
  result: ApplyResult;
  partition: number;
  offset: bigint;
}

/**
 * Who waits for the store: API writes for their own update (by its watch
 * mark), and reads for any update of a run. Each wait is bounded by its
 * timeout and leaves nothing behind when it ends, however it ends.
 */
export class ApplyWaiters {
  private readonly marks = new Map<string, (applied: Applied) => void>();
  private readonly runs = new Map<string, (() => void)[]>();

  /** The store applied (or skipped) the update marked `mark`. */
  applied(mark: string, applied: Applied): void {
    const waiter = this.marks.get(mark);
    if (!waiter) return;
    this.marks.delete(mark);
    waiter(applied);
  }

  /** The store applied updates of these runs. */
  touched(runIds: readonly string[]): void {
    for (const id of runIds) {
      const ws = this.runs.get(id);
      if (ws) [...ws].forEach((w) => w());
    }
  }

  /**
   * Waits until the store applied the update marked `mark` (WATCH_HEADER)
   * and says what applying it did and where it was. Call it before the
   * write: the store may apply it before the broker's ack arrives.
   */
  awaitApplied(mark: string, timeoutMs: number): { applied: Promise<Applied | 'timeout'>; cancel: () => void } {
    let timer: NodeJS.Timeout;
    let settle: (v: Applied | 'timeout') => void = () => undefined;
    const applied = new Promise<Applied | 'timeout'>((resolveApplied) => {
      settle = resolveApplied;
      timer = setTimeout(() => {
        this.marks.delete(mark);
        resolveApplied('timeout');
      }, timeoutMs);
      this.marks.set(mark, (a) => {
        clearTimeout(timer);
        resolveApplied(a);
      });
    });
    const cancel = () => {
      clearTimeout(timer);
      this.marks.delete(mark);
      settle('timeout');
    };
    return { applied, cancel };
  }

  /** Waits until an update of `runId` is applied, or `timeoutMs` passes. */
  awaitRun(runId: string, timeoutMs: number): Promise<void> {
    return new Promise((resolveRun) => {
      const list = this.runs.get(runId) ?? [];
      const done = () => {
        clearTimeout(timer);
        const rest = (this.runs.get(runId) ?? []).filter((w) => w !== done);
        if (rest.length) this.runs.set(runId, rest);
        else this.runs.delete(runId);
        resolveRun();
      };
      const timer = setTimeout(done, timeoutMs);
      list.push(done);
      this.runs.set(runId, list);
    });
  }

  /** Writes waiting for the store to apply them right now. */
  get markWaitCount(): number {
    return this.marks.size;
  }

  /** Runs waited for right now (bounded by the API). */
  get runWaitCount(): number {
    let n = 0;
    for (const ws of this.runs.values()) n += ws.length;
    return n;
  }
}
