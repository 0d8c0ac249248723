import type { KafkaMessage } from 'kafkajs';
import { ErrorCodes, RejectedEventError } from '../../errors';
import type { Invoker } from '../../invokers/invoker';
import type { InvokerRegistry, RoutingMode } from '../../invokers/index';
import type { RouterMetrics } from '../../metrics/metrics';
import type { FrozenRun } from '../../model/run';
import type { MessageContext } from './context';
import type { DeadLetterStage } from './dead-letter';

/**
 * The org a run id already belongs to, as far as the run store knows
 * (undefined: not known).
 */
export type OwnerOf = (runId: string) => string | null | undefined;

/**
 * Stage "resolve": which invoker takes the run, in this mode.
 *
 * Contract: resolves to the invoker, or null when the message is done:
 * skipped (not this mode's run), or dead-lettered (no invoker for its
 * type; RUN_ID_CONFLICT when its run id names another org's run, with no
 * status update, which would be one of that other org's run).
 */
export class ResolveStage {
  constructor(
    private readonly invokers: InvokerRegistry,
    private readonly mode: RoutingMode,
    private readonly ownerOf: OwnerOf | undefined,
    private readonly deadLetter: DeadLetterStage,
    private readonly metrics: RouterMetrics,
  ) {}

  async apply(ctx: MessageContext, message: KafkaMessage, run: FrozenRun): Promise<Invoker | null> {
    const type = run.invocationMethod.type;
    const owner = this.ownerOf?.(run.runId);
    if (owner && owner !== run.orgId) {
      const conflict = new RejectedEventError(ErrorCodes.RUN_ID_CONFLICT, 'the run id already names a run of another org');
      await this.deadLetter.reject(ctx, message, conflict, { identity: run, invocationType: type, run, report: false });
      return null;
    }
    const resolution = this.invokers.resolve(run, this.mode);
    if ('skip' in resolution) {
      this.metrics.skipped.inc({ reason: 'not_this_mode' });
      return null;
    }
    if ('reject' in resolution) {
      await this.deadLetter.reject(ctx, message, resolution.reject, { identity: run, invocationType: type, run });
      return null;
    }
    return resolution.invoker;
  }
}
