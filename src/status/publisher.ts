import type { StatusCodec } from '../codec/status-codec';
import { classifyWriteError } from '../kafka/write-error';
import type { BatchProducer } from '../kafka/batch-producer';
import type { RunStatusUpdate } from '../model/status';


export type StatusFields = Partial<Omit<RunStatusUpdate, 'runId' | 'orgId' | 'action' | 'at'>> & Pick<RunStatusUpdate, 'status'>;

/** Cap on free text in one update, so a chatty backend cannot bloat the topic. */
export const MAX_TEXT = 4_096;

export function capText(text: string | null | undefined, max = MAX_TEXT): string | null {
  if (text === null || text === undefined) return null;
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Fills the fields an update needs from what is known of the run. */
export function buildUpdate(
  identity: { runId: string; orgId: string | null; action: string | null },
  fields: StatusFields,
  now = Date.now(),
): RunStatusUpdate {
  return {
    runId: identity.runId,
    orgId: identity.orgId,
    action: identity.action,
    status: fields.status,
    statusLabel: capText(fields.statusLabel, 256),
    summary: capText(fields.summary),
    links: fields.links ?? [],
    externalRunId: fields.externalRunId ?? null,
    log: capText(fields.log),
    invocationType: fields.invocationType ?? null,
    source: fields.source ?? 'ROUTER',
    attempt: fields.attempt ?? 1,
    at: now,
    actor: fields.actor ?? null,
    response: fields.response ?? null,
    run: fields.run ?? null,
    claim: fields.claim ?? null,
    statusDetail: fields.statusDetail ?? null,
    approval: fields.approval ?? null,
    resentFrom: fields.resentFrom ?? null,
    // Only on the router's own call records, so every other update reads as it always did.
    ...(fields.call ? { call: fields.call } : {}),
  };
}

/**
 * Writes run-status updates, keyed by run id so that one run's updates stay
 * in one partition, in order. Resolves once the broker acknowledged.
 */
export class StatusPublisher {
  /** When the writes started failing (null while they succeed): readiness reads it. */
  private failingSince: number | null = null;

  constructor(
    private readonly producer: BatchProducer,
    private readonly topic: string,
    private readonly codec: StatusCodec,
  ) {}

  /** `headers` are added to `x-run-id` (the run store's watch mark, for one). */
  async publish(update: RunStatusUpdate, headers: Record<string, string> = {}): Promise<void> {
    try {
      const value = await this.codec.encode(update);
      // A STARTED record holds its call back until acknowledged: it does not wait out the linger.
      await this.producer.send(this.topic, { key: update.runId, value, headers: { 'x-run-id': update.runId, ...headers } }, { urgent: update.call === 'STARTED' });
      this.failingSince = null;
    } catch (err) {
      const classified = classifyWriteError(err, `status update of ${update.runId}`);
      // A refused update is that update's problem, not the writer's health.
      if (classified.retriable) this.failingSince ??= Date.now();
      throw classified;
    }
  }

  /** False while status writes fail (the registry or the broker cannot take them). */
  get healthy(): boolean {
    return this.failingSince === null;
  }
}
