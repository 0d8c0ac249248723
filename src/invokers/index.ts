import type { Admin } from 'kafkajs';
import type { Config } from '../config/config';
import { ErrorCodes, RejectedEventError } from '../errors';
import type { BatchProducer } from '../kafka/batch-producer';
import type { Logger } from '../log';
import { FrozenRun, InvocationType, isInvocationType } from '../model/run';
import type { Invoker } from './invoker';
import { KafkaInvoker } from './kafka/invoker';
import { WebhookInvoker } from './webhook/invoker';
import { GithubInvoker } from './github/invoker';
import { GitlabInvoker } from './gitlab/invoker';

/** Everything an invoker may be built from. */
export interface InvokerDeps {
  config: Config;
  logger: Logger;
  producer: BatchProducer;
  admin: Admin;
  secretFor(orgId: string): string | undefined;
}

type InvokerFactory = (deps: InvokerDeps) => Invoker;

/**
 * The registry: one entry per backend kind. Adding a backend is a folder
 * under invokers/ and one line here.
 */
export const INVOKER_FACTORIES: Partial<Record<InvocationType, InvokerFactory>> = {
  KAFKA: (d) =>
    new KafkaInvoker({
      config: d.config.invokers.kafka,
      producer: d.producer,
      admin: d.admin,
      orgTopicTemplate: d.config.topics.orgTemplate,
      secretFor: d.secretFor,
      agentDelivery: d.config.agent.delivery,
    }),
  WEBHOOK: (d) => new WebhookInvoker({ config: d.config.invokers.webhook, secretFor: d.secretFor }),
  GITHUB: (d) => new GithubInvoker(d.config.invokers.github),
  GITLAB: (d) => new GitlabInvoker(d.config.invokers.gitlab),
};

/** Invocation types whose `agent: true` sends the run to the org topic. */
export const AGENT_CAPABLE: ReadonlySet<string> = new Set(['WEBHOOK', 'GITLAB']);

/**
 * `router` mode sends agent runs to the org topic (KAFKA invoker);
 * `agent` mode performs them itself, and leaves KAFKA runs to their backend.
 */
export type RoutingMode = 'router' | 'agent';

export type Resolution = { invoker: Invoker } | { skip: string } | { reject: RejectedEventError };

export class InvokerRegistry {
  constructor(
    private readonly invokers: ReadonlyMap<InvocationType, Invoker>,
    /** Agent mode: takes every agent run, whatever its type (Port's agent's payload mapping). */
    private readonly agentInvoker?: Invoker,
  ) {}

  static create(deps: InvokerDeps, only?: readonly InvocationType[], agentInvoker?: Invoker): InvokerRegistry {
    const map = new Map<InvocationType, Invoker>();
    for (const [type, factory] of Object.entries(INVOKER_FACTORIES) as [InvocationType, InvokerFactory][]) {
      if (!only || only.includes(type)) map.set(type, factory(deps));
    }
    return new InvokerRegistry(map, agentInvoker);
  }

  get(type: InvocationType): Invoker | undefined {
    return this.invokers.get(type);
  }

  /** Chooses the invoker for a run, or says why none applies. */
  resolve(run: FrozenRun, mode: RoutingMode): Resolution {
    const { type, agent } = run.invocationMethod;
    if (!isInvocationType(type)) {
      return { reject: new RejectedEventError(ErrorCodes.UNKNOWN_INVOCATION, `unknown invocation type "${type}"`) };
    }
    const viaAgent = agent && AGENT_CAPABLE.has(type);
    if (mode === 'agent') {
      if (!viaAgent) return { skip: `not an agent run (${type}${agent ? '' : ', agent: false'})` };
      if (this.agentInvoker) return { invoker: this.agentInvoker };
    } else if (viaAgent || type === 'KAFKA') {
      return this.pick('KAFKA', type);
    }
    return this.pick(type, type);
  }

  private pick(kind: InvocationType, declared: string): Resolution {
    const invoker = this.invokers.get(kind);
    if (invoker) return { invoker };
    return {
      reject: new RejectedEventError(ErrorCodes.UNSUPPORTED_INVOCATION, `no ${kind} invoker is enabled for ${declared} runs`),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.invokers.values(), ...(this.agentInvoker ? [this.agentInvoker] : [])].map((i) => i.close()));
  }
}
