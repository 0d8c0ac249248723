import type { KafkaMessage } from 'kafkajs';
import { ErrorCodes, RejectedEventError, describeError } from '../errors';
import type { InvokerRegistry, RoutingMode } from '../invokers/index';
import { keyIdentity } from '../codec/decode';
import { lazyChild, Logger } from '../log';
import type { RouterMetrics } from '../metrics/metrics';
import type { FrozenRun } from '../model/run';
import type { PayloadTemplates } from '../mapping/templates';
import type { Followers } from './followers';
import type { MessageContext, SourcePosition } from './stages/context';
import { DeadLetterStage, DeadLetterWriter } from './stages/dead-letter';
import { GateStage, RunGate } from './stages/gate';
import { Intake, IntakeStage } from './stages/intake';
import { InvokeStage } from './stages/invoke';
import { CallLedger, OnceStage } from './stages/once';
import { ReleaseStage } from './stages/release';
import { OwnerOf, ResolveStage } from './stages/resolve';
import type { StatusReporter } from './stages/report';

export interface PipelineDeps {
  logger: Logger;
  metrics: RouterMetrics;
  intake: Intake;
  invokers: InvokerRegistry;
  reporter: StatusReporter;
  deadLetters: DeadLetterWriter;
  followers: Followers;
  mode: RoutingMode;
  /** Holds runs until someone decides (router mode only). */
  gate?: RunGate;
  ownerOf?: OwnerOf;
  agentPayload?: (run: FrozenRun) => string | null;
  /** Evaluates `{{ }}` templates of the invocation method before the call (router mode). */
  templates?: PayloadTemplates;
  /** The memory of calls made (the run store in router mode, the agent's own file in agent mode): no run is invoked twice. */
  ledger?: CallLedger;
}

/** How one message ended: done (its offset may be committed) or stopped (redelivered). */
export type MessageEnd = 'done' | 'stopped';

/**
 * One message through the stages, in order: release → intake → resolve →
 * once → gate → invoke (→ report), any of them ending it by a dead letter. Each
 * stage resolves to what the next one takes, or null when the message is
 * done. The pipeline knows nothing of partitions or commits.
 */
export class Pipeline {
  private readonly release: ReleaseStage;
  private readonly intake: IntakeStage;
  private readonly resolve: ResolveStage;
  private readonly once: OnceStage;
  private readonly gate: GateStage;
  private readonly invoke: InvokeStage;
  private readonly deadLetter: DeadLetterStage;

  constructor(private readonly deps: PipelineDeps) {
    const { metrics, reporter } = deps;
    // A gate acts only where runs are routed: an agent performs what routers released.
    const gate = deps.mode === 'router' ? deps.gate : undefined;
    this.deadLetter = new DeadLetterStage(deps.deadLetters, reporter, metrics);
    this.release = new ReleaseStage(gate, this.deadLetter, metrics);
    this.intake = new IntakeStage(deps.intake, this.deadLetter, metrics);
    this.resolve = new ResolveStage(deps.invokers, deps.mode, deps.ownerOf, this.deadLetter, metrics);
    const { ledger } = deps;
    this.once = new OnceStage(ledger, metrics);
    this.gate = new GateStage(gate);
    // A router records its calls on the status topic, where the store reads them; an agent's ledger records its
    // own calls itself, and the status topic's `call` records stay the routers' (the router's store reads them).
    const recordsCalls = deps.mode === 'router' && Boolean(ledger);
    this.invoke = new InvokeStage({ reporter, metrics, followers: deps.followers, agentPayload: deps.agentPayload, recordsCalls, ledger });
  }

  /**
   * Decides and acknowledges the outcome of one message. Resolves 'stopped'
   * only when the partition's own signal aborted; a bug in a stage must not
   * hold the partition's offset for good, so the message is dead-lettered
   * INTERNAL_ERROR (its key's run, if it names one, ends FAILURE).
   */
  async process(received: KafkaMessage, source: SourcePosition, signal: AbortSignal): Promise<MessageEnd> {
    const ctx: MessageContext = { received, source, signal, log: lazyChild(this.deps.logger, { partition: source.partition, offset: received.offset }) };
    try {
      await this.stages(ctx);
      return 'done';
    } catch (err) {
      if (signal.aborted) return 'stopped';
      ctx.log.error({ err }, 'unexpected error handling a message; dead-lettering it');
      const error = new RejectedEventError(ErrorCodes.INTERNAL_ERROR, `unexpected error: ${describeError(err)}`);
      try {
        await this.deadLetter.reject(ctx, received, error, { identity: keyIdentity(received.key), invocationType: null });
        return 'done';
      } catch {
        return 'stopped';
      }
    }
  }

  private async stages(ctx: MessageContext): Promise<void> {
    this.deps.metrics.received.inc();
    const released = await this.release.apply(ctx);
    if (!released) return;
    const { message } = released;
    const run = await this.intake.apply(ctx, message);
    if (!run) return;
    const invoker = await this.resolve.apply(ctx, message, run);
    if (!invoker) return;
    const verdict = await this.once.apply(ctx, run, released.released);
    if (!verdict) return;
    if (await this.gate.hold(ctx, run, message, released.released)) return;
    try {
      const rendered = this.deps.templates ? await this.deps.templates.render(run) : run;
      await this.invoke.apply(ctx, rendered, invoker, verdict);
    } catch (err) {
      // The run's output or its status can never be written: dead-letter it.
      if (!(err instanceof RejectedEventError) || ctx.signal.aborted) throw err;
      await this.deadLetter.reject(ctx, message, err, { identity: run, invocationType: run.invocationMethod.type, run });
    }
  }
}
