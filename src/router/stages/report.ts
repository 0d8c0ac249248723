import { ErrorCodes, RejectedEventError, RouterError, describeError, isRouterError } from '../../errors';
import type { InvocationOutcome } from '../../invokers/invoker';
import { untilDone } from '../../net/retry';
import type { Logger } from '../../log';
import type { RouterMetrics } from '../../metrics/metrics';
import type { FrozenRun } from '../../model/run';
import type { RunStatusUpdate } from '../../model/status';
import { StatusFields, StatusPublisher, buildUpdate } from '../../status/publisher';
import { runInfo } from '../../status/run-info';

/**
 * Stage "report": how a run's progress reaches the status topic.
 *
 * Contract: `publish` waits out what may pass (the broker or the registry
 * away) until the signal aborts, and gives up on an update that can never
 * be written (the registry refuses it), returning the refusal: the caller
 * decides what a run whose status cannot be written comes to. A `RunReport`
 * keeps one run's updates in the order they were made, and puts what the
 * run is (the run store keeps it) in its first one.
 */
export class StatusReporter {
  constructor(
    private readonly status: StatusPublisher,
    private readonly metrics: RouterMetrics,
  ) {}

  /**
   * Publishes one update, logging the first failure and every tenth after
   * it. Resolves to null once written, or to the refusal of an update that
   * can never be written (dropped, loudly).
   */
  publish(update: RunStatusUpdate, signal: AbortSignal, log: Logger): Promise<RouterError | null> {
    return untilDone(
      signal,
      async () => {
        try {
          await this.status.publish(update);
          return null;
        } catch (err) {
          if (!isRouterError(err) || err.retriable) throw err;
          this.metrics.statusDropped.inc({ reason: err.code });
          log.error({ runId: update.runId, status: update.status, reason: err.code, err: describeError(err) }, 'status update refused; it cannot be written and is dropped');
          return err;
        }
      },
      (err, n) => {
        if (n === 1 || n % 10 === 0) log.warn({ runId: update.runId, attempt: n, err: describeError(err) }, 'status update failed; retrying');
      },
    );
  }

  /** The updates of one run, in order. */
  forRun(run: FrozenRun, opts: { partition: number; agentPayload: string | null; log: Logger; describe: boolean }): RunReport {
    return new RunReport(this, run, opts);
  }
}

/** One run's updates, chained so they reach the topic in the order made. */
export class RunReport {
  private chain: Promise<void> = Promise.resolve();
  private described: boolean;
  private firstRefusal: RouterError | null = null;

  constructor(
    private readonly reporter: StatusReporter,
    private readonly run: FrozenRun,
    private readonly opts: { partition: number; agentPayload: string | null; log: Logger; describe: boolean },
  ) {
    this.described = !opts.describe;
  }

  /** Queues an update; resolves once it (and every update before it) is written or given up. */
  report(fields: StatusFields, signal: AbortSignal): Promise<void> {
    const { run, opts } = this;
    const update = buildUpdate(run, {
      invocationType: run.invocationMethod.type,
      ...fields,
      run: this.described ? null : runInfo(run, opts.partition, opts.agentPayload),
    });
    this.described = true;
    this.chain = this.chain.then(async () => {
      const refusal = await this.reporter.publish(update, signal, opts.log);
      this.firstRefusal ??= refusal;
    });
    return this.chain;
  }

  /** The refusal as the run's rejection, when an update could never be written. */
  rejection(): RejectedEventError | null {
    const refused = this.firstRefusal;
    return refused ? new RejectedEventError(ErrorCodes.STATUS_REJECTED, `a status update of the run cannot be written: ${refused.message}`) : null;
  }
}

/** The status update an invocation's outcome makes. */
export function outcomeFields(outcome: InvocationOutcome): StatusFields {
  const common = {
    statusLabel: outcome.statusLabel,
    links: outcome.links,
    externalRunId: outcome.externalRunId,
    attempt: outcome.attempt,
    response: outcome.response,
  };
  switch (outcome.status) {
    case 'delivered':
      return { ...common, status: 'IN_PROGRESS', log: outcome.log ?? 'Delivered', summary: outcome.summary };
    case 'succeeded':
      return { ...common, status: 'SUCCESS', log: outcome.log, summary: outcome.summary };
    case 'failed':
      return { ...common, status: 'FAILURE', statusLabel: outcome.statusLabel ?? outcome.code, log: outcome.log, summary: outcome.summary };
  }
}
