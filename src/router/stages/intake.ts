import type { KafkaMessage } from 'kafkajs';
import type { ActionCatalog, SecretKeyFor } from '../../catalog/catalog';
import { EventIdentity, decodeTrigger } from '../../codec/decode';
import type { RegistryCodec } from '../../codec/registry';
import { RejectedEventError, describeError, isRouterError } from '../../errors';
import { untilDone } from '../../net/retry';
import type { RouterMetrics } from '../../metrics/metrics';
import type { FrozenRun } from '../../model/run';
import type { MessageContext } from './context';
import type { DeadLetterStage } from './dead-letter';

export type IntakeResult =
  | { kind: 'run'; run: FrozenRun }
  | { kind: 'reject'; error: RejectedEventError; identity: EventIdentity }
  | { kind: 'skip'; reason: string };

/**
 * Turns one consumed message into a run, a rejection (dead letter) or a
 * deliberate skip. Throws only errors worth retrying (registry down).
 */
export interface Intake {
  accept(message: KafkaMessage): Promise<IntakeResult>;
}

/** The router's intake: decode, validate, then apply the action catalog. */
export class TriggerIntake implements Intake {
  constructor(
    private readonly registry?: RegistryCodec,
    private readonly catalog?: ActionCatalog,
    /** The org's key for secret inputs, which leave the router encrypted. */
    private readonly keyFor?: SecretKeyFor,
  ) {}

  async accept(message: KafkaMessage): Promise<IntakeResult> {
    const decoded = await decodeTrigger(message.value, { registry: this.registry, key: message.key });
    if (!decoded.ok) return { kind: 'reject', error: decoded.error, identity: decoded.identity };
    if (!this.catalog) return { kind: 'run', run: decoded.run };
    const applied = this.catalog.apply(decoded.run, this.keyFor);
    if (applied instanceof RejectedEventError) {
      const { runId, orgId, action } = decoded.run;
      return { kind: 'reject', error: applied, identity: { runId, orgId, action } };
    }
    return { kind: 'run', run: applied };
  }
}

/**
 * Stage "intake": decode and validate the event.
 *
 * Contract: resolves to the run, or null when the message is done
 * (skipped on purpose, or dead-lettered here with its reason). Only what
 * may pass (the registry away) is retried, until the signal aborts;
 * anything else the intake throws is a bug and goes up to the pipeline.
 */
export class IntakeStage {
  constructor(
    private readonly intake: Intake,
    private readonly deadLetter: DeadLetterStage,
    private readonly metrics: RouterMetrics,
  ) {}

  async apply(ctx: MessageContext, message: KafkaMessage): Promise<FrozenRun | null> {
    const { signal, log } = ctx;
    const result = await untilDone(
      signal,
      () => this.intake.accept(message),
      (err, n) => {
        this.metrics.intakeRetries.inc();
        log.warn({ err: describeError(err), attempt: n }, 'cannot decode yet; retrying');
      },
      (err) => !(isRouterError(err) && err.retriable),
    );
    if (result.kind === 'skip') {
      this.metrics.skipped.inc({ reason: 'not_for_intake' });
      log.debug({ reason: result.reason }, 'skipped');
      return null;
    }
    if (result.kind === 'reject') {
      await this.deadLetter.reject(ctx, message, result.error, { identity: result.identity, invocationType: null });
      return null;
    }
    return result.run;
  }
}
