import type { ErrorCode } from '../errors';
import type { Logger } from '../log';
import type { FrozenRun, InvocationType } from '../model/run';
import type { StatusFields } from '../status/publisher';

/**
 * What an invocation came to. Expected results are values; an invoker
 * throws only for the unexpected (a bug) or when `signal` aborted it.
 * - `delivered`: the backend accepted the run and will report on its own;
 *   the run stays IN_PROGRESS.
 * - `succeeded` / `failed`: the run ends SUCCESS / FAILURE now.
 */
export type InvocationOutcome =
  | ({ status: 'delivered' } & OutcomeFields)
  | ({ status: 'succeeded' } & OutcomeFields)
  | ({ status: 'failed'; code: ErrorCode; summary: string } & OutcomeFields);

export interface OutcomeFields {
  summary?: string;
  log?: string;
  statusLabel?: string;
  links?: string[];
  externalRunId?: string;
  /** Attempts made (1 when the first call settled it). */
  attempt?: number;
  /** What the backend answered, as JSON text (a synchronized webhook's response, as Port keeps it). */
  response?: string;
  /**
   * Nothing to add to the announcement: the router publishes no update for
   * this outcome (the run now belongs to someone else who reports on it).
   */
  silent?: boolean;
}

export interface InvocationContext {
  /**
   * Aborted when the router shuts down or loses the partition. An invoker
   * stops promptly and throws; the run is then redelivered, not failed.
   */
  signal: AbortSignal;
  logger: Logger;
  /** Publishes an extra update for this run (in order, after the router's). */
  report(fields: StatusFields): Promise<void>;
  /**
   * Hands over work that continues after the outcome (following a workflow
   * to its end). It runs in the background, bounded by the invoker's own
   * timeout; its updates go through `report`.
   */
  follow(task: (signal: AbortSignal) => Promise<void>): void;
}

export type Announce = 'before' | 'if-slow' | 'after';

/** How long an `if-slow` call may run before the router announces it. */
export const SLOW_CALL_MS = 1_000;

/**
 * One backend kind. The router calls `invoke` once per accepted run after
 * validation, from many runs concurrently; an invoker keeps no per-run state
 * between calls. Adding a backend is one folder with an Invoker and one
 * entry in `invokers/index.ts`.
 */
export interface Invoker {
  readonly type: InvocationType;
  /**
   * When the router publishes the run's first IN_PROGRESS update:
   * - `before` the call, awaited: hand-offs to an agent, whose own updates
   *   must come after ours;
   * - `if-slow`: when the call is still running after SLOW_CALL_MS, so the
   *   UI sees a slow run start; a quick call whose outcome is IN_PROGRESS
   *   anyway (delivered) needs no announcement, and a quick terminal
   *   outcome is announced just before it;
   * - `after`: the outcome itself is the first update (quick, durable
   *   hand-offs such as a Kafka write).
   */
  announce(run: FrozenRun): Announce;
  /** Where a run goes, for logs and the first status update. */
  describe(run: FrozenRun): string;
  invoke(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome>;
  /**
   * A call of this run was recorded STARTED with no outcome (the router
   * died mid-call): the outcome of that first call when it can be found
   * (GitHub: the workflow run carrying the run id, then followed), or null
   * to call again. Invokers without it are called again.
   */
  recover?(run: FrozenRun, ctx: InvocationContext, startedAt: number): Promise<InvocationOutcome | null>;
  /**
   * Follows again a run this kind was following when its router stopped
   * (from the run store: its external id and when it started). Resolves
   * when the run ended (reported through `ctx.report`) or the signal
   * aborted. Kinds that follow nothing leave it out.
   */
  resume?(run: FrozenRun, job: { externalRunId: string; startedAt: number }, ctx: InvocationContext, signal: AbortSignal): Promise<void>;
  /** Called once at shutdown, after the last invoke returned. */
  close(): Promise<void>;
}
