import type { KafkaMessage } from 'kafkajs';
import { describeError, isRouterError } from '../../errors';
import { untilDone } from '../../net/retry';
import type { RouterMetrics } from '../../metrics/metrics';
import type { MessageContext } from './context';
import type { DeadLetterStage } from './dead-letter';
import { RELEASE_HEADER, RunGate } from './gate';

/** A header's value as text, or null. */
export function headerText(message: KafkaMessage, name: string): string | null {
  const v = message.headers?.[name];
  if (v === undefined || v === null) return null;
  return (Array.isArray(v) ? v[0] : v)?.toString() ?? null;
}

/**
 * Stage "release": a nudge (a message with RELEASE_HEADER) asks the gate
 * for the event of the run it names; the nudge itself proves nothing.
 *
 * Contract: resolves to the message the next stages route (the consumed
 * one, or the released run's parked event with `released` set), or null
 * when the message is done (skipped, or dead-lettered here).
 */
export class ReleaseStage {
  constructor(
    private readonly gate: RunGate | undefined,
    private readonly deadLetter: DeadLetterStage,
    private readonly metrics: RouterMetrics,
  ) {}

  async apply(ctx: MessageContext): Promise<{ message: KafkaMessage; released: boolean } | null> {
    const { gate } = this;
    const { received, signal, log } = ctx;
    const runId = gate ? headerText(received, RELEASE_HEADER) : null;
    if (runId === null || !gate) return { message: received, released: false };
    const release = await untilDone(
      signal,
      () => gate.release(runId, `${ctx.source.partition}:${received.offset}`, log),
      (err, n) => log.warn({ err: describeError(err), attempt: n, runId }, 'release not settled yet; retrying'),
      (err) => !(isRouterError(err) && err.retriable),
    );
    if (!release) {
      this.metrics.skipped.inc({ reason: 'nothing_to_release' });
      return null;
    }
    if ('reject' in release) {
      await this.deadLetter.reject(ctx, received, release.reject, { identity: gate.known(runId), invocationType: null });
      return null;
    }
    const message = { ...received, key: release.event.key, value: release.event.value, headers: {} } as KafkaMessage;
    return { message, released: true };
  }
}
