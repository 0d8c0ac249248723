import type { KafkaMessage } from 'kafkajs';
import { RouterError, describeError, isRouterError } from '../../errors';
import { untilDone } from '../../net/retry';
import type { Logger } from '../../log';
import type { FrozenRun } from '../../model/run';
import type { EventIdentity, MessageContext } from './context';

/** The header of a release nudge on the trigger topic (its value is ignored: the gate's record decides). */
export const RELEASE_HEADER = 'x-action-router-release';

/** What the release of a nudge came to: the parked event to route, a rejection, or nothing to do. */
export type Release = { event: { key: Buffer | null; value: Buffer } } | { reject: RouterError } | null;

/**
 * What holds runs back until someone decides (manual approval implements
 * it; the router knows only this). Methods throw retriable RouterErrors for
 * what may pass (the store or the broker away) and nothing else.
 */
export interface RunGate {
  /** Does a run of this action wait for a decision before it is routed? */
  holds(run: FrozenRun): boolean;
  /** Records the run as waiting, with its event kept to be released later. */
  park(run: FrozenRun, message: KafkaMessage, partition: number, log: Logger): Promise<void>;
  /**
   * The event of a run a nudge releases, once the gate's record shows it
   * decided and this nudge (`partition:offset`) is the one that releases it.
   */
  release(runId: string, nudge: string, log: Logger): Promise<Release>;
  /** What the gate knows of a run (for the dead letter of its nudge). */
  known(runId: string): EventIdentity;
}

/**
 * Stage "gate": a run whose action requires a decision is parked instead of
 * routed. A field or header of the event claiming a decision counts for
 * nothing; only a release (stage "release") routes a held run.
 *
 * Contract: resolves true when the run is parked (its message is done),
 * false when it goes on; waits out what may pass until the signal aborts.
 */
export class GateStage {
  constructor(private readonly gate: RunGate | undefined) {}

  async hold(ctx: MessageContext, run: FrozenRun, message: KafkaMessage, released: boolean): Promise<boolean> {
    const { gate } = this;
    if (released || !gate || !gate.holds(run)) return false;
    const { signal, log, source } = ctx;
    await untilDone(
      signal,
      () => gate.park(run, message, source.partition, log),
      (err, n) => log.warn({ err: describeError(err), attempt: n, runId: run.runId }, 'cannot park the run yet; retrying'),
      (err) => !(isRouterError(err) && err.retriable),
    );
    return true;
  }
}
