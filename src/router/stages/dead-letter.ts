import type { KafkaMessage } from 'kafkajs';
import type { BatchProducer } from '../../kafka/batch-producer';
import { ErrorCodes, RouterError, describeError } from '../../errors';
import { classifyWriteError } from '../../kafka/write-error';
import { untilDone } from '../../net/retry';
import { RouterMetrics, invocationLabel } from '../../metrics/metrics';
import type { FrozenRun } from '../../model/run';
import { buildUpdate } from '../../status/publisher';
import { carriesSecrets, runInfo } from '../../status/run-info';
import type { EventIdentity, MessageContext, SourcePosition } from './context';
import type { StatusReporter } from './report';

/*
 * Stage "dead-letter": a message that cannot be routed goes to the
 * dead-letter topic with its reason, and the run it names ends FAILURE.
 */

/** The run and org of a rejected event, when they could be read. */
export interface DeadLetterIdentity {
  runId?: string | null;
  orgId?: string | null;
  /** The decoded event holds what a run page masks (`x-dlq-sensitive`): the store does not keep a copy it cannot mask. */
  sensitive?: boolean;
}

/** The contract's dead-letter headers for one rejected message. */
export function deadLetterHeaders(
  error: RouterError,
  source: SourcePosition,
  offset: string,
  identity: DeadLetterIdentity = {},
  now = Date.now(),
): Record<string, string> {
  const known: Record<string, string> = {};
  // Ours, beside the contract's: whose run it was, when the event says (the console's org view).
  if (identity.runId) known['x-dlq-run-id'] = identity.runId;
  if (identity.orgId) known['x-dlq-org-id'] = identity.orgId;
  if (identity.sensitive) known['x-dlq-sensitive'] = 'true';
  return {
    ...known,
    'x-dlq-reason': error.code,
    'x-dlq-error': error.message.slice(0, 2_000),
    'x-dlq-source-topic': source.topic,
    'x-dlq-source-partition': String(source.partition),
    'x-dlq-source-offset': offset,
    'x-dlq-at': new Date(now).toISOString(),
  };
}

/** What of a value is kept when the whole one is too large for the dead-letter topic. */
export const TRIMMED_VALUE_BYTES = 64 * 1024;

/**
 * Writes a message that cannot be routed to the dead-letter topic with its
 * original key, value and headers unchanged, plus the reason headers.
 * Throws only what may pass (the broker away): a dead letter too large for
 * the topic is written trimmed (`x-dlq-trimmed`, `x-dlq-original-size`), and
 * one the broker refuses for good is given up and reported, never retried
 * forever.
 */
export class DeadLetterWriter {
  constructor(
    private readonly producer: BatchProducer,
    private readonly topic: string,
    private readonly onGiveUp: (err: RouterError) => void = () => undefined,
  ) {}

  async write(message: KafkaMessage, source: SourcePosition, error: RouterError, identity: DeadLetterIdentity = {}): Promise<void> {
    const reasons = deadLetterHeaders(error, source, message.offset, identity);
    const headers = { ...(message.headers ?? {}), ...reasons };
    try {
      await this.producer.send(this.topic, { key: message.key, value: message.value, headers });
      return;
    } catch (err) {
      const classified = classifyWriteError(err, `dead letter of offset ${message.offset}`);
      if (classified.retriable) throw classified;
      if (classified.code !== ErrorCodes.OUTPUT_TOO_LARGE) return this.onGiveUp(classified);
    }
    const size = message.value?.length ?? 0;
    const trimmed = {
      key: message.key && message.key.length > 1024 ? message.key.subarray(0, 1024) : message.key,
      value: message.value ? message.value.subarray(0, TRIMMED_VALUE_BYTES) : null,
      // Only the reason headers: the original ones may be what is too large.
      headers: { ...reasons, 'x-dlq-trimmed': 'true', 'x-dlq-original-size': String(size) },
    };
    try {
      await this.producer.send(this.topic, trimmed);
    } catch (err) {
      const classified = classifyWriteError(err, `trimmed dead letter of offset ${message.offset}`);
      if (classified.retriable) throw classified;
      this.onGiveUp(classified);
    }
  }
}

/** How a rejection ends: which run it names and whether that run gets its FAILURE. */
export interface Rejection {
  identity: EventIdentity;
  /** The run's invocation type, when the event got that far (metrics). */
  invocationType: string | null;
  /** The decoded run, when there is one (its FAILURE update describes it). */
  run?: FrozenRun;
  /** false: no FAILURE update (the run id is not this event's to end). Default true. */
  report?: boolean;
}

/**
 * Contract: resolves once the letter is on the topic (or given up as
 * unwritable) and the run's FAILURE is written or refused; waits out the
 * broker until the signal aborts.
 */
export class DeadLetterStage {
  constructor(
    private readonly writer: DeadLetterWriter,
    private readonly reporter: StatusReporter,
    private readonly metrics: RouterMetrics,
  ) {}

  async reject(ctx: MessageContext, message: KafkaMessage, error: RouterError, rejection: Rejection): Promise<void> {
    const { identity, invocationType, run } = rejection;
    const { log, signal, source } = ctx;
    log.warn({ reason: error.code, error: error.message, runId: identity.runId, orgId: identity.orgId }, 'dead-lettering message');
    const letter = { runId: identity.runId, orgId: identity.orgId, sensitive: run ? carriesSecrets(run) : false };
    await untilDone(signal, () => this.writer.write(message, source, error, letter), (err, n) =>
      log.warn({ err: describeError(err), attempt: n }, 'dead-letter write failed; retrying'),
    );
    this.metrics.deadLettered.inc({ invocation: invocationLabel(invocationType), reason: error.code });
    const runId = identity.runId;
    if (!runId || rejection.report === false) return;
    const update = buildUpdate({ ...identity, runId }, {
      status: 'FAILURE',
      statusLabel: error.code,
      summary: `Run rejected (${error.code}): ${error.message}`,
      invocationType,
      run: run ? runInfo(run, source.partition) : null,
    });
    await this.reporter.publish(update, signal, log);
  }
}
