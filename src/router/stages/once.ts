import type { InvocationOutcome } from '../../invokers/invoker';
import type { Logger } from '../../log';
import type { RouterMetrics } from '../../metrics/metrics';
import { invocationLabel } from '../../metrics/metrics';
import type { FrozenRun } from '../../model/run';
import type { CallRecord } from '../../model/status';
import { sleep } from '../../net/retry';
import type { MessageContext } from './context';

export type { CallRecord } from '../../model/status';

/**
 * The memory of calls made, read before each call: the run store in router
 * mode (StoreCallLedger), the agent's own file in agent mode
 * (AgentCallLedger). It is read only once `current` resolved: the store has
 * applied the status topic up to where it ended when this router last took
 * partitions, so every outcome acknowledged before then (by this router
 * before a crash, or by the partition's previous owner) is in it.
 *
 * The store learns of calls from the status topic (`call: STARTED/ENDED`,
 * written by stage "invoke"); a ledger that records calls itself has
 * `started` and `ended`, which stage "invoke" calls instead.
 */
export interface CallLedger {
  /**
   * Undefined when the store is current for the partitions owned now; else
   * a promise that resolves once it is (rejects only when `signal` aborts).
   * (Checked for every run: the current case costs no promise.)
   */
  current(signal: AbortSignal): Promise<void> | undefined;
  /** The run's record, undefined when the store does not know the run; throws while the store cannot be read. */
  record(runId: string): CallRecord | undefined;
  /** Resolves when an update of the run is applied, or after `ms`. */
  awaitRun(runId: string, ms: number): Promise<void>;
  /** How long a call recorded STARTED, with no outcome, may still be under way elsewhere (a previous owner's grace). */
  readonly doubtMs: number;
  /**
   * Records that the run's call starts: called before the call (and before
   * it is announced), which is made only once this returned. Throws when it
   * cannot be recorded (the run is then not called; stage "invoke" waits
   * for the ledger).
   */
  started?(run: FrozenRun): void;
  /**
   * Records the call's outcome: called once the outcome is reported (or
   * refused for good). Throws when it cannot be recorded (logged; the run
   * goes on: its outcome is on the status topic already).
   */
  ended?(run: FrozenRun, outcome: InvocationOutcome['status']): void;
}

/** Why a trigger is not called again (action_router_runs_skipped_total{reason}). */
export type SkipReason = 'already_ended' | 'already_invoked' | 'approval';

/** Whether to call: for the first time, or again after a call started at `startedAt` whose outcome is unknown (`inDoubt`). */
export type CallVerdict = { inDoubt: false } | { inDoubt: true; startedAt: number } | null;

/**
 * Stage "once": no run is invoked twice. Before the gate and the call, the
 * run's record in the ledger decides: a run that ended, whose call's outcome
 * is recorded, or that is in the hands of an approval (waiting, approved,
 * released by a nudge) is skipped and its message done. A call recorded
 * STARTED with no outcome is in doubt: it is waited for while its caller
 * may still be finishing it (a rebalance), then called again, `inDoubt`
 * telling the invoker to look for the first call's work first.
 *
 * Contract: resolves to the verdict, or null when the message is done
 * (skipped); waits, while the ledger is behind or cannot be read, until the
 * signal aborts.
 */
export class OnceStage {
  constructor(
    private readonly ledger: CallLedger | undefined,
    private readonly metrics: RouterMetrics,
  ) {}

  async apply(ctx: MessageContext, run: FrozenRun, released: boolean): Promise<CallVerdict> {
    const { ledger } = this;
    if (!ledger) return { inDoubt: false };
    const behind = ledger.current(ctx.signal);
    if (behind) await behind;
    const first = readNow(ledger, run.runId);
    let record = first === UNREADABLE ? await this.read(ledger, run.runId, ctx) : first;
    // Not known, or another org's run (the resolve stage refused that one already): called as new.
    if (!record || (record.orgId !== null && record.orgId !== run.orgId)) return { inDoubt: false };
    const skip = skipReason(record, released);
    if (skip) return this.skipped(ctx.log, run, skip);
    const startedAt = record.callStartedAt;
    if (startedAt === null) return { inDoubt: false };
    // In doubt: its caller may still be on it (it lost the partition in a rebalance, and has a grace period).
    const until = startedAt + ledger.doubtMs;
    while (Date.now() < until && !ctx.signal.aborted) {
      await ledger.awaitRun(run.runId, Math.min(1_000, until - Date.now()));
      record = await this.read(ledger, run.runId, ctx);
      const settled = record && skipReason(record, released);
      if (settled) return this.skipped(ctx.log, run, settled);
    }
    this.metrics.inDoubt.inc({ invocation: invocationLabel(run.invocationMethod.type) });
    ctx.log.warn({ runId: run.runId, startedAt }, 'the run was called before, and its outcome is unknown: calling it again (the invoker looks for the first call first)');
    return { inDoubt: true, startedAt };
  }

  private skipped(log: Logger, run: FrozenRun, reason: SkipReason): null {
    this.metrics.skipped.inc({ reason });
    log.info({ runId: run.runId, reason }, 'trigger delivered again for a run already handled: not called again');
    return null;
  }

  /** The record, read again while the store cannot be read (reopening a file); undefined when it does not know the run. */
  private async read(ledger: CallLedger, runId: string, ctx: MessageContext): Promise<CallRecord | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return ledger.record(runId);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        if (attempt === 1) ctx.log.warn({ runId, err: (err as Error).message }, 'the run store cannot be read; waiting for it before calling');
        await sleep(200, ctx.signal);
      }
    }
  }
}

const UNREADABLE = Symbol('unreadable');

/** The record read at once; UNREADABLE (read again, waiting) while the store cannot be read. */
function readNow(ledger: CallLedger, runId: string): CallRecord | undefined | typeof UNREADABLE {
  try {
    return ledger.record(runId);
  } catch {
    return UNREADABLE;
  }
}

/** What in the record says the run is not to be called now. */
function skipReason(record: CallRecord, released: boolean): SkipReason | null {
  if (record.endedAt !== null) return 'already_ended';
  if (record.callEndedAt !== null) return 'already_invoked';
  // A run in an approval's hands is routed only by its release (stage "release").
  if (!released && record.approvalState !== null) return 'approval';
  return null;
}
