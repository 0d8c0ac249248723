import { ErrorCodes, RejectedEventError, describeError, isRouterError } from '../../errors';
import { InvocationContext, InvocationOutcome, Invoker, SLOW_CALL_MS } from '../../invokers/invoker';
import { AbortedError, untilDone } from '../../net/retry';
import { Logger, lazyChild } from '../../log';
import { RouterMetrics, invocationLabel } from '../../metrics/metrics';
import type { FrozenRun } from '../../model/run';
import type { StatusFields } from '../../status/publisher';
import type { Followers } from '../followers';
import type { MessageContext } from './context';
import { StatusReporter, outcomeFields } from './report';
import type { CallLedger, CallVerdict } from './once';

export interface InvokeStageDeps {
  reporter: StatusReporter;
  metrics: RouterMetrics;
  followers: Followers;
  /** What Port's polling agent gets for a run (claim-pending), or null when no agent polls for it. */
  agentPayload?: (run: FrozenRun) => string | null;
  /**
   * Record each call for the store (stage "once"): STARTED before a call to
   * a backend (WEBHOOK, GITHUB, GITLAB; acknowledged before the call), and
   * ENDED with every outcome. A Kafka write (KAFKA and agent runs) records
   * only its outcome: in doubt, it is written again either way.
   */
  recordsCalls?: boolean;
  /** A ledger that records calls itself (an agent's): told of each call's start and end. */
  ledger?: CallLedger;
}

/**
 * Stage "invoke": hands the run to its invoker, announces it as the invoker
 * asks, reports the outcome, then starts the invoker's follow-ups.
 *
 * Contract:
 * - resolves once the outcome is reported (a backend that failed is an
 *   outcome: the run ends FAILURE, the message is done);
 * - throws AbortedError only when the partition's own signal aborted (the
 *   run is redelivered); an abort from anywhere else is an outcome;
 * - throws RejectedEventError when the run's output or its status can never
 *   be written (the caller dead-letters it). A run announced before the
 *   call whose announcement is refused is never invoked;
 * - with a ledger that records calls itself, the run is called only once
 *   its start is recorded (waiting, while it cannot be, until the signal
 *   aborts), and its end is recorded once its outcome is reported.
 */
export class InvokeStage {
  constructor(private readonly deps: InvokeStageDeps) {}

  async apply(ctx: MessageContext, run: FrozenRun, invoker: Invoker, verdict: NonNullable<CallVerdict> = { inDoubt: false }): Promise<void> {
    const { metrics, reporter, followers } = this.deps;
    const { signal, source } = ctx;
    const type = run.invocationMethod.type;
    const logger = lazyChild(ctx.log, { runId: run.runId, orgId: run.orgId, invoker: invoker.type });
    const updates = reporter.forRun(run, { partition: source.partition, agentPayload: this.deps.agentPayload?.(run) ?? null, log: logger, describe: true });
    // Follow-up reports (after the outcome) outlive the partition's signal.
    let reportSignal = signal;
    // Follow-ups start only once the outcome is reported, so their updates
    // (found, SUCCESS...) can never overtake it on the status topic.
    const followUps: ((signal: AbortSignal) => Promise<void>)[] = [];
    const invocation: InvocationContext = {
      signal,
      logger,
      report: (fields) => updates.report(fields, reportSignal),
      follow: (task) => void followUps.push(task),
    };
    // Before anything is announced: a run whose start cannot be recorded is not called at all.
    const { ledger } = this.deps;
    if (ledger?.started) await recordStart(ledger, run, logger, signal);
    metrics.routed.inc({ invocation: invocationLabel(type) });
    const recordsStart = this.deps.recordsCalls === true && invoker.type !== 'KAFKA';
    const announce = invoker.announce(run);
    const announcement: StatusFields = {
      status: 'IN_PROGRESS',
      log: `${verdict.inDoubt ? 'Called before with no outcome recorded; routing again' : 'Routing'} ${type} run to ${invoker.describe(run)}`,
    };
    let announced = false;
    let slowTimer: NodeJS.Timeout | undefined;
    if (announce === 'before' || recordsStart) {
      // The STARTED record is bookkeeping, acknowledged before the call: it carries the announcement only when
      // the invoker announces before the call anyway (the log stays as without it: a quick call's run gets one line).
      announced = announce === 'before';
      await updates.report(recordsStart ? { ...(announced ? announcement : { status: 'IN_PROGRESS' }), call: 'STARTED' } : announcement, signal);
      // The hand-off's own updates would follow one the store never got.
      const refused = updates.rejection();
      if (refused) throw refused;
    }
    if (announce === 'if-slow') {
      slowTimer = setTimeout(() => {
        announced = true;
        // Chained like every report, so it reaches the topic before the outcome.
        updates.report(announcement, signal).catch(() => undefined);
      }, SLOW_CALL_MS);
    }
    const started = process.hrtime.bigint();
    let outcome: InvocationOutcome;
    try {
      // In doubt, the invoker may find the first call's work (a workflow run carrying the run id) instead of calling again.
      const found = verdict.inDoubt && invoker.recover ? await invoker.recover(run, invocation, verdict.startedAt) : null;
      outcome = found ?? (await invoker.invoke(run, invocation));
    } catch (err) {
      clearTimeout(slowTimer);
      // Only the partition's own abort means "stopped": another one (a
      // shared call another run gave up) is this run's failure to report.
      if (signal.aborted) throw new AbortedError();
      if (err instanceof RejectedEventError) throw err;
      if (!(err instanceof AbortedError)) logger.error({ err }, 'invoker threw');
      outcome = {
        status: 'failed',
        code: isRouterError(err) && !(err instanceof AbortedError) ? err.code : ErrorCodes.BACKEND_UNAVAILABLE,
        summary: `Invocation failed: ${describeError(err)}`,
      };
    }
    clearTimeout(slowTimer);
    // Every run's first update is IN_PROGRESS: announce a quick terminal outcome.
    if (announce === 'if-slow' && !announced && outcome.status !== 'delivered') void updates.report(announcement, signal).catch(() => undefined);
    observe(metrics, type, outcome, started);
    // One line per run would dominate the logs at thousands of runs a
    // second: failures at info, the rest at debug.
    if (outcome.status === 'failed') logger.info({ outcome: outcome.status, code: outcome.code }, outcome.summary);
    else if (logger.isLevelEnabled('debug')) logger.debug({ outcome: outcome.status }, outcome.log ?? outcome.summary ?? outcome.status);
    if (!outcome.silent) await updates.report({ ...outcomeFields(outcome), ...(this.deps.recordsCalls ? { call: 'ENDED' as const } : {}) }, signal);
    // Recorded after the report: a run skipped as already called after a crash has its outcome on the topic.
    if (ledger?.ended) recordEnd(ledger, run, outcome, logger);
    const refused = updates.rejection();
    if (refused) throw refused;
    reportSignal = followers.signal;
    for (const task of followUps) followers.start(task, logger, run.runId, source.partition);
  }
}

/**
 * Records the call's start in a ledger that records calls itself, waiting
 * while it cannot be written (a full disk): a call made unrecorded would be
 * made again, unchecked, after a crash. Failing closed holds the run (and
 * its partition's commit) rather than failing it: once the ledger can be
 * written the run goes on, and if the partition stops first the run is
 * redelivered. Readiness says why meanwhile (the ledger's `problem`).
 */
async function recordStart(ledger: CallLedger, run: FrozenRun, logger: Logger, signal: AbortSignal): Promise<void> {
  let failures = 0;
  await untilDone(
    signal,
    async () => ledger.started!(run),
    (err, n) => {
      failures = n;
      if (n === 1 || n % 50 === 0) logger.error({ err: describeError(err), attempt: n }, "the call's start cannot be recorded; the run waits for the ledger before it is called");
    },
  );
  if (failures > 0) logger.info({ attempts: failures + 1 }, "the call's start is recorded: calling");
}

/**
 * Records the call's end. A failure is logged and the run goes on: its
 * outcome is reported already, and the record matters only if this process
 * dies before the offset is committed (then the run is called again, in
 * doubt, as one under way at a crash would be).
 */
function recordEnd(ledger: CallLedger, run: FrozenRun, outcome: InvocationOutcome, logger: Logger): void {
  try {
    ledger.ended!(run, outcome.status);
  } catch (err) {
    logger.error({ err: describeError(err) }, "the call's end cannot be recorded; after a crash the run would be called again");
  }
}

function observe(metrics: RouterMetrics, type: string, outcome: InvocationOutcome, started: bigint): void {
  const invocation = invocationLabel(type);
  metrics.latency.observe({ invocation }, Number(process.hrtime.bigint() - started) / 1e9);
  metrics.outcomes.inc({ invocation, outcome: outcome.status });
  if (outcome.status === 'failed' && outcome.code === ErrorCodes.AUTH_FAILED) metrics.authFailed('backend', type);
  if ((outcome.attempt ?? 1) > 1) metrics.retries.inc({ invocation }, (outcome.attempt ?? 1) - 1);
}
