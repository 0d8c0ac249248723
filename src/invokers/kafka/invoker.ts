import type { Admin } from 'kafkajs';
import { BackendError, ErrorCodes, RejectedEventError, describeError } from '../../errors';
import { classifyWriteError } from '../../kafka/write-error';
import type { BatchProducer } from '../../kafka/batch-producer';
import type { FrozenRun } from '../../model/run';
import type { InvocationContext, InvocationOutcome, Invoker } from '../invoker';
import { untilDone } from '../../net/retry';
import type { KafkaInvokerConfig } from './config';
import { buildOrgMessage } from './org-message';

export interface KafkaInvokerDeps {
  config: KafkaInvokerConfig;
  producer: BatchProducer;
  admin: Admin;
  orgTopicTemplate: string;
  secretFor(orgId: string): string | undefined;
  /** `http`: agent WEBHOOK runs wait in the run store for Port's polling agent instead. */
  agentDelivery?: 'kafka' | 'http';
}

/** True when an agent run is handed over through the runs API (claim-pending), not the org topic. */
export function polledByAgent(run: FrozenRun, delivery: 'kafka' | 'http' | undefined): boolean {
  return delivery === 'http' && run.invocationMethod.agent && run.invocationMethod.type === 'WEBHOOK';
}

export function orgTopic(template: string, orgId: string): string {
  return template.split('{orgId}').join(orgId);
}

/** Characters Kafka accepts in a topic name. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * KAFKA runs, and `agent: true` runs of other kinds: write Port's run
 * message to the org's topic. The backend (or agent) reports progress
 * itself, so a write is `delivered` and the run stays IN_PROGRESS.
 */
export class KafkaInvoker implements Invoker {
  readonly type = 'KAFKA' as const;
  /** Agent runs are announced first: the agent's own updates must follow ours. */
  announce(run: FrozenRun): 'before' | 'after' {
    return run.invocationMethod.agent ? 'before' : 'after';
  }
  private readonly ensured = new Map<string, Promise<void>>();

  constructor(private readonly deps: KafkaInvokerDeps) {}

  describe(run: FrozenRun): string {
    if (polledByAgent(run, this.deps.agentDelivery)) return 'a polling agent of the org';
    const via = run.invocationMethod.agent ? ` for the ${run.invocationMethod.type} agent` : '';
    return `Kafka topic ${orgTopic(this.deps.orgTopicTemplate, run.orgId)}${via}`;
  }

  async invoke(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome> {
    if (polledByAgent(run, this.deps.agentDelivery)) {
      // The announcement carried what claim-pending hands out (see Router).
      return { status: 'delivered', log: 'Waiting for an agent to claim the run (POST /v1/actions/runs/claim-pending)' };
    }
    const topic = orgTopic(this.deps.orgTopicTemplate, run.orgId);
    if (!TOPIC_NAME.test(topic)) {
      return { status: 'failed', code: ErrorCodes.INVOCATION_INVALID, summary: `org id "${run.orgId}" does not make a valid topic name (${topic})` };
    }
    const { body, headers } = buildOrgMessage(run, this.deps.secretFor(run.orgId));
    // The write must happen: retry through broker outages until shutdown.
    // A write the broker refuses for good (too large, not allowed) is the
    // run's problem: it is dead-lettered instead of retried forever.
    await untilDone(
      ctx.signal,
      async () => {
        await this.ensureTopic(topic);
        try {
          await this.deps.producer.send(topic, { key: run.runId, value: body, headers });
        } catch (err) {
          const classified = classifyWriteError(err, `writing run ${run.runId} (${body.length} bytes) to ${topic}`);
          if (!classified.retriable) throw new RejectedEventError(classified.code, classified.message, { cause: err });
          throw classified;
        }
      },
      (err, n) => ctx.logger.warn({ err: describeError(err), attempt: n, topic }, 'org topic write failed; retrying'),
      (err) => err instanceof RejectedEventError,
    );
    // An agent run now belongs to the agent, which reports on it itself.
    return { status: 'delivered', log: `Routed to ${this.describe(run)}`, silent: run.invocationMethod.agent };
  }

  private ensureTopic(topic: string): Promise<void> {
    if (!this.deps.config.autoCreateTopics) return Promise.resolve();
    let done = this.ensured.get(topic);
    if (!done) {
      const { admin, config } = this.deps;
      done = admin
        .listTopics()
        .then(async (existing) => {
          if (existing.includes(topic)) return;
          // Another router may create it at the same moment; kafkajs then
          // answers false instead of failing, which is what we want.
          await admin.createTopics({ topics: [{ topic, numPartitions: config.orgTopicPartitions }], waitForLeaders: true });
        })
        .catch((err: unknown) => {
          this.ensured.delete(topic);
          throw new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, `cannot create topic ${topic}: ${describeError(err)}`, { retriable: true });
        });
      this.ensured.set(topic, done);
    }
    return done;
  }

  async close(): Promise<void> {}
}
