import { setMaxListeners } from 'node:events';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Config } from '../config/config';
import { ErrorCodes, RejectedEventError, RouterError, describeError, isRouterError } from '../errors';
import { InvocationContext, InvocationOutcome, Invoker, SLOW_CALL_MS } from '../invokers/invoker';
import type { InvokerRegistry, RoutingMode } from '../invokers/index';
import { AbortedError, untilDone } from '../invokers/retry';
import type { Logger } from '../log';
import { RouterMetrics, invocationLabel } from '../metrics/metrics';
import { FrozenRun, isInvocationType } from '../model/run';
import { keyIdentity } from '../codec/decode';
import type { RunStatusUpdate } from '../model/status';
import { StatusFields, StatusPublisher, buildUpdate } from '../status/publisher';
import { carriesSecrets, runInfo } from '../status/run-info';
import type { DeadLetterWriter } from './dead-letter';
import type { Intake } from './intake';
import { Followers } from './followers';
import { OffsetWindow } from './offset-window';
import { Approvals, RELEASE_HEADER } from '../approvals/approvals';

export interface RouterDeps {
  kafka: Kafka;
  logger: Logger;
  metrics: RouterMetrics;
  intake: Intake;
  invokers: InvokerRegistry;
  status: StatusPublisher;
  deadLetters: DeadLetterWriter;
  mode: RoutingMode;
  topic: string;
  groupId: string;
  window: Config['window'];
  /** Called when the consumer stopped for good (kafkajs gave up restarting it). */
  onFatal?: (err: unknown) => void;
  /**
   * Unfinished runs that were being followed (GitHub workflow runs, GitLab
   * pipelines) and came from these trigger partitions; from the run store,
   * once it caught up with the status topic.
   */
  followable?: (partitions: number[]) => Promise<ResumableRun[]>;
  /** What Port's polling agent gets for a run (claim-pending), or null when no agent polls for it. */
  agentPayload?: (run: FrozenRun) => string | null;
  /** Manual approval (needs the run store): parks runs of actions that require it, releases approved ones. */
  approvals?: Approvals;
  /**
   * The org a run id already belongs to, as far as the run store knows
   * (undefined: not known). An event whose run id names another org's run
   * is dead-lettered RUN_ID_CONFLICT and touches nothing of that run.
   */
  ownerOf?: (runId: string) => string | null | undefined;
}

/** A header's value as text, or null. */
function headerText(message: KafkaMessage, name: string): string | null {
  const v = message.headers?.[name];
  if (v === undefined || v === null) return null;
  return (Array.isArray(v) ? v[0] : v)?.toString() ?? null;
}

/** A run to follow again after a restart or a rebalance. */
export interface ResumableRun {
  run: FrozenRun;
  externalRunId: string;
  startedAt: number;
  partition: number;
}

interface PartitionState {
  key: string;
  topic: string;
  partition: number;
  window: OffsetWindow;
  lastCommitted: bigint | null;
  /** Aborts this partition's work (revocation, shutdown past the grace). */
  abort: AbortController;
  resume: (() => void) | null;
}

/**
 * The consume loop. Per partition, runs are admitted into a bounded window
 * and complete out of order; only the low-water mark is committed, so an
 * offset is committed only once the outcome of it and of everything before
 * it (org-topic write, status update or dead letter) is acknowledged.
 * A full window pauses its partition until there is room again.
 */
export class Router {
  private consumer: Consumer | null = null;
  private readonly partitions = new Map<string, PartitionState>();
  /**
   * Partitions taken away by a rebalance whose runs are still finishing.
   * What they finish is still committed (the coordinator takes commits from
   * any member of the current generation; a commit only ever covers runs
   * whose outcome is acknowledged, so it can cause duplicates, never loss).
   */
  private readonly revoked = new Map<string, PartitionState>();
  private totalInFlight = 0;
  private stopping = false;
  private running = false;
  private commitTimer: NodeJS.Timeout | null = null;
  private committing: Promise<void> | null = null;
  /** Runs followed by this process, each owned by its trigger partition. */
  private readonly followers = new Followers();
  /** `topic:partition` of the partitions assigned to this router now. */
  private assigned = new Set<string>();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: RouterDeps) {}

  /** True while the consumer is in the group and fetching. */
  get ready(): boolean {
    return this.running && !this.stopping;
  }

  get topic(): string {
    return this.deps.topic;
  }

  get inFlight(): number {
    return this.totalInFlight;
  }

  async start(): Promise<void> {
    const { kafka, groupId, topic, logger } = this.deps;
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: this.deps.window.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.deps.window.sessionTimeoutMs / 10)),
      rebalanceTimeout: 60_000,
      // A fetched batch should fit in the window: what does not fit is dropped
      // and fetched again after the pause. 256 KB (about 250 runs of 1 KB)
      // raised throughput by a quarter and lowered peak RSS by a fifth
      // against 1 MB in the benchmark's drain of 200k runs.
      maxBytesPerPartition: 256 * 1024,
      // kafkajs sleeps this long when every partition is paused, and does
      // not wake on resume: keep it short so backpressure releases quickly.
      maxWaitTimeInMs: 50,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment));
    consumer.on(consumer.events.REBALANCING, () => void this.commit());
    consumer.on(consumer.events.CRASH, (e) => {
      logger.error({ err: describeError(e.payload.error), restart: e.payload.restart }, 'consumer crashed');
      if (!e.payload.restart) {
        this.running = false;
        this.deps.onFatal?.(e.payload.error);
      }
    });
    await consumer.connect();
    // A new group starts from the earliest offset: triggers produced before
    // the router first ran are routed too.
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 16,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.running = true;
    this.commitTimer = setInterval(() => void this.commit(), this.deps.window.commitIntervalMs);
    logger.info({ topic, groupId, mode: this.deps.mode }, 'consuming');
  }

  private state(topic: string, partition: number): PartitionState {
    const key = `${topic}:${partition}`;
    let state = this.partitions.get(key);
    if (!state) {
      const abort = new AbortController();
      // Every run in flight listens on its partition's signal.
      setMaxListeners(0, abort.signal);
      state = { key, topic, partition, window: new OffsetWindow(), lastCommitted: null, abort, resume: null };
      this.partitions.set(key, state);
    }
    return state;
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }: EachBatchPayload): Promise<void> {
    const state = this.state(batch.topic, batch.partition);
    const { maxInFlightPerPartition, maxInFlight } = this.deps.window;
    const last = batch.messages[batch.messages.length - 1];
    if (last) {
      const lag = Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n);
      this.deps.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, lag));
    }
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping) break;
      const offset = BigInt(message.offset);
      if (state.window.seen(offset)) {
        // Re-fetched after a rejoin: it is in flight or done already.
        resolveOffset(message.offset);
        continue;
      }
      if (state.window.inFlight >= maxInFlightPerPartition || this.totalInFlight >= maxInFlight) {
        // Backpressure: stop fetching this partition; unresolved messages
        // are fetched again once it resumes.
        if (!state.resume) state.resume = pause();
        break;
      }
      state.window.add(offset);
      this.totalInFlight++;
      this.deps.metrics.inFlight.set({ topic: state.topic, partition: String(state.partition) }, state.window.inFlight);
      this.track(state, message, offset);
      resolveOffset(message.offset);
    }
    await heartbeat();
  }

  private track(state: PartitionState, message: KafkaMessage, offset: bigint): void {
    const done = () => {
      state.window.complete(offset);
      this.settle(state);
    };
    this.handle(state, message).then(done, (err: unknown) => {
      if (err instanceof AbortedError || state.abort.signal.aborted) {
        // Stopped: the run stays uncommitted and is redelivered.
        this.settle(state);
        return;
      }
      // A bug must not hold the partition's offset for good: the message is
      // dead-lettered (and its run, if the key names one, ends FAILURE).
      const log = this.deps.logger.child({ partition: state.partition, offset: message.offset });
      log.error({ err }, 'unexpected error handling a message; dead-lettering it');
      const error = new RejectedEventError(ErrorCodes.INTERNAL_ERROR, `unexpected error: ${describeError(err)}`);
      this.deadLetter(message, { topic: state.topic, partition: state.partition }, error, keyIdentity(message.key), null, state.abort.signal, log).then(
        done,
        () => this.settle(state),
      );
    });
  }

  private settle(state: PartitionState): void {
    this.totalInFlight--;
    this.deps.metrics.inFlight.set({ topic: state.topic, partition: String(state.partition) }, state.window.inFlight);
    const { maxInFlightPerPartition, maxInFlight } = this.deps.window;
    if (!this.stopping && this.totalInFlight <= (maxInFlight * 3) / 4) {
      for (const s of this.partitions.values()) {
        if (s.resume && s.window.inFlight <= (maxInFlightPerPartition * 3) / 4) {
          const resume = s.resume;
          s.resume = null;
          resume();
        }
      }
    }
    // A revoked partition that has drained: commit what it finished (the
    // commit then forgets it).
    if (state.window.inFlight === 0 && this.revoked.get(state.key) === state) void this.commit();
    if (this.totalInFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  /** Decides and acknowledges the outcome of one message. */
  private async handle(state: PartitionState, received: KafkaMessage): Promise<void> {
    const { intake, invokers, metrics, mode, approvals } = this.deps;
    const signal = state.abort.signal;
    const source = { topic: state.topic, partition: state.partition };
    metrics.received.inc();
    const log = lazyChild(this.deps.logger, { partition: state.partition, offset: received.offset });
    let message = received;
    // A release nudge: the store decides whether the run is approved; the
    // nudge itself proves nothing.
    const releaseOf = approvals && mode === 'router' ? headerText(received, RELEASE_HEADER) : null;
    if (releaseOf !== null) {
      const released = await untilDone(
        signal,
        () => approvals!.release(releaseOf, `${state.partition}:${received.offset}`, log),
        (err, n) => log.warn({ err: describeError(err), attempt: n, runId: releaseOf }, 'release not settled yet; retrying'),
        (err) => !(isRouterError(err) && err.retriable),
      );
      if (!released) {
        metrics.skipped.inc();
        return;
      }
      if ('reject' in released) {
        const run = this.deps.approvals!.known(releaseOf);
        return this.deadLetter(received, source, released.reject, run, null, signal, log);
      }
      message = { ...received, key: released.event.key, value: released.event.value, headers: {} } as KafkaMessage;
    }
    // Only what may pass (the registry away) is retried; anything else the
    // intake throws is a bug, dead-lettered by track() as INTERNAL_ERROR.
    const result = await untilDone(
      signal,
      () => intake.accept(message),
      (err, n) => log.warn({ err: describeError(err), attempt: n }, 'cannot decode yet; retrying'),
      (err) => !(isRouterError(err) && err.retriable),
    );
    if (result.kind === 'skip') {
      metrics.skipped.inc();
      log.debug({ reason: result.reason }, 'skipped');
      return;
    }
    if (result.kind === 'reject') {
      return this.deadLetter(message, source, result.error, result.identity, null, signal, log);
    }
    const run = result.run;
    const owner = this.deps.ownerOf?.(run.runId);
    if (owner && owner !== run.orgId) {
      // Named by its own org; no status update, which would be one of the other org's run.
      const conflict = new RejectedEventError(ErrorCodes.RUN_ID_CONFLICT, 'the run id already names a run of another org');
      return this.deadLetter(message, source, conflict, run, run.invocationMethod.type, signal, log, run, false);
    }
    const resolution = invokers.resolve(run, mode);
    if ('skip' in resolution) {
      metrics.skipped.inc();
      return;
    }
    if ('reject' in resolution) {
      return this.deadLetter(message, source, resolution.reject, run, run.invocationMethod.type, signal, log, run);
    }
    // An action that requires approval waits; a field or header of the event claiming approval counts for nothing.
    if (releaseOf === null && approvals && mode === 'router' && approvals.requirement(run)) {
      await untilDone(
        signal,
        () => approvals.park(run, message, state.partition, log),
        (err, n) => log.warn({ err: describeError(err), attempt: n, runId: run.runId }, 'cannot park the run yet; retrying'),
        (err) => !(isRouterError(err) && err.retriable),
      );
      return;
    }
    try {
      await this.invoke(run, resolution.invoker, signal, log, state.partition);
    } catch (err) {
      // The run's output or its status can never be written: dead-letter it.
      if (!(err instanceof RejectedEventError)) throw err;
      await this.deadLetter(message, source, err, run, run.invocationMethod.type, signal, log, run);
    }
  }

  private async deadLetter(
    message: KafkaMessage,
    source: { topic: string; partition: number },
    error: RouterError,
    identity: { runId: string | null; orgId: string | null; action: string | null },
    invocationType: string | null,
    signal: AbortSignal,
    log: Logger,
    run?: FrozenRun,
    /** false: no FAILURE update for the run (its id is not this event's to end). */
    report = true,
  ): Promise<void> {
    log.warn({ reason: error.code, error: error.message, runId: identity.runId, orgId: identity.orgId }, 'dead-lettering message');
    const letter = { runId: identity.runId, orgId: identity.orgId, sensitive: run ? carriesSecrets(run) : false };
    await untilDone(signal, () => this.deps.deadLetters.write(message, source, error, letter), (err, n) =>
      log.warn({ err: describeError(err), attempt: n }, 'dead-letter write failed; retrying'),
    );
    this.deps.metrics.deadLettered.inc({ invocation: invocationLabel(invocationType), reason: error.code });
    const runId = identity.runId;
    if (!runId || !report) return;
    const update = buildUpdate({ ...identity, runId }, {
      status: 'FAILURE',
      statusLabel: error.code,
      summary: `Run rejected (${error.code}): ${error.message}`,
      invocationType,
      run: run ? runInfo(run, source.partition) : null,
    });
    await this.publishStatus(update, signal, log);
  }

  /**
   * Publishes one status update, waiting out what may pass (the broker or
   * the registry unreachable), logging the first failure and every tenth
   * after it. An update the registry refuses can never be written: it is
   * given up, loudly, rather than holding the partition forever, and the
   * refusal returned (the caller dead-letters the run).
   */
  private publishStatus(update: RunStatusUpdate, signal: AbortSignal, log: Logger): Promise<RouterError | null> {
    return untilDone(
      signal,
      async () => {
        try {
          await this.deps.status.publish(update);
          return null;
        } catch (err) {
          if (!isRouterError(err) || err.retriable) throw err;
          this.deps.metrics.statusDropped.inc({ reason: err.code });
          log.error({ runId: update.runId, status: update.status, reason: err.code, err: describeError(err) }, 'status update refused; it cannot be written and is dropped');
          return err;
        }
      },
      (err, n) => {
        if (n === 1 || n % 10 === 0) log.warn({ runId: update.runId, attempt: n, err: describeError(err) }, 'status update failed; retrying');
      },
    );
  }

  private async invoke(run: FrozenRun, invoker: Invoker, signal: AbortSignal, parent: Logger, partition: number): Promise<void> {
    const { metrics } = this.deps;
    const type = run.invocationMethod.type;
    const logger = lazyChild(parent, { runId: run.runId, orgId: run.orgId, invoker: invoker.type });
    let reports = Promise.resolve();
    // Follow-up reports (after the outcome) outlive the partition's signal.
    let reportSignal = signal;
    // The run's first update says what the run is (the run store keeps it).
    let described = false;
    let refused: RouterError | null = null;
    const report = (fields: StatusFields, s: AbortSignal = signal): Promise<void> => {
      const update = buildUpdate(run, { invocationType: type, ...fields, run: described ? null : runInfo(run, partition, this.deps.agentPayload?.(run) ?? null) });
      described = true;
      // Chained: one run's updates reach the topic in the order reported.
      reports = reports.then(async () => {
        refused ??= await this.publishStatus(update, s, logger);
      });
      return reports;
    };
    // Follow-ups start only once the outcome is reported, so their updates
    // (found, SUCCESS...) can never overtake it on the status topic.
    const followUps: ((signal: AbortSignal) => Promise<void>)[] = [];
    const ctx: InvocationContext = {
      signal,
      logger,
      report: (fields) => report(fields, reportSignal),
      follow: (task) => void followUps.push(task),
    };
    metrics.routed.inc({ invocation: invocationLabel(type) });
    const announce = invoker.announce(run);
    const announcement: StatusFields = { status: 'IN_PROGRESS', log: `Routing ${type} run to ${invoker.describe(run)}` };
    let announced = false;
    let slowTimer: NodeJS.Timeout | undefined;
    if (announce === 'before') {
      announced = true;
      await report(announcement);
    } else if (announce === 'if-slow') {
      slowTimer = setTimeout(() => {
        announced = true;
        // Chained like every report, so it reaches the topic before the outcome.
        report(announcement).catch(() => undefined);
      }, SLOW_CALL_MS);
    }
    const started = process.hrtime.bigint();
    let outcome: InvocationOutcome;
    try {
      outcome = await invoker.invoke(run, ctx);
    } catch (err) {
      if (signal.aborted || err instanceof AbortedError) {
        clearTimeout(slowTimer);
        throw new AbortedError();
      }
      if (err instanceof RejectedEventError) {
        clearTimeout(slowTimer);
        throw err;
      }
      logger.error({ err }, 'invoker threw');
      outcome = {
        status: 'failed',
        code: isRouterError(err) ? err.code : ErrorCodes.BACKEND_UNAVAILABLE,
        summary: `Invocation failed: ${describeError(err)}`,
      };
    }
    clearTimeout(slowTimer);
    // Every run's first update is IN_PROGRESS: announce a quick terminal outcome.
    if (announce === 'if-slow' && !announced && outcome.status !== 'delivered') void report(announcement).catch(() => undefined);
    metrics.latency.observe({ invocation: invocationLabel(type) }, Number(process.hrtime.bigint() - started) / 1e9);
    metrics.outcomes.inc({ invocation: invocationLabel(type), outcome: outcome.status });
    if ((outcome.attempt ?? 1) > 1) metrics.retries.inc({ invocation: invocationLabel(type) }, (outcome.attempt ?? 1) - 1);
    // One line per run would dominate the logs at thousands of runs a
    // second: failures at info, the rest at debug.
    if (outcome.status === 'failed') logger.info({ outcome: outcome.status, code: outcome.code }, outcome.summary);
    else if (logger.isLevelEnabled('debug')) logger.debug({ outcome: outcome.status }, outcome.log ?? outcome.summary ?? outcome.status);
    if (!outcome.silent) await report(outcomeFields(outcome));
    // Set by the report chain (TypeScript cannot see the closure assign it).
    const statusRefused = refused as RouterError | null;
    if (statusRefused) throw new RejectedEventError(ErrorCodes.STATUS_REJECTED, `a status update of the run cannot be written: ${statusRefused.message}`);
    reportSignal = this.followers.signal;
    for (const task of followUps) this.followers.start(task, logger, run.runId, partition);
  }

  /** The trigger partitions this router owns now. */
  ownedPartitions(): number[] {
    const prefix = `${this.deps.topic}:`;
    return [...this.assigned].filter((k) => k.startsWith(prefix)).map((k) => Number(k.slice(prefix.length)));
  }

  /** Follows again the unfinished runs of partitions this router now owns. */
  private async resumeFollows(partitions: number[]): Promise<void> {
    const { followable, invokers, logger } = this.deps;
    if (!followable || this.deps.mode !== 'router' || partitions.length === 0) return;
    let runs: ResumableRun[];
    try {
      runs = await followable(partitions);
    } catch (err) {
      logger.warn({ err: describeError(err) }, 'cannot list the runs to follow again');
      return;
    }
    for (const r of runs) {
      const { run } = r;
      if (this.stopping || this.followers.has(run.runId) || !this.assigned.has(`${this.deps.topic}:${r.partition}`)) continue;
      const invoker = isInvocationType(run.invocationMethod.type) ? invokers.get(run.invocationMethod.type) : undefined;
      if (!invoker?.resume) continue;
      const log = lazyChild(logger, { runId: run.runId, orgId: run.orgId, invoker: invoker.type });
      log.info({ externalRunId: r.externalRunId }, 'following again a run left unfinished');
      let reports = Promise.resolve();
      this.followers.start(
        (signal) => {
          const ctx: InvocationContext = {
            signal,
            logger: log,
            report: (fields) => {
              const update = buildUpdate(run, { invocationType: run.invocationMethod.type, ...fields });
              reports = reports.then(async () => void (await this.publishStatus(update, signal, log)));
              return reports;
            },
            follow: () => undefined,
          };
          return invoker.resume!(run, { externalRunId: r.externalRunId, startedAt: r.startedAt }, ctx, signal);
        },
        log,
        run.runId,
        r.partition,
      );
    }
  }

  /** Commits every partition's low-water mark that moved since the last commit. */
  commit(): Promise<void> {
    if (this.committing) return this.committing;
    const consumer = this.consumer;
    const todo = [...this.partitions.values(), ...this.revoked.values()].filter(
      (s) => s.window.committable !== null && s.window.committable !== s.lastCommitted,
    );
    if (!consumer || todo.length === 0) {
      this.forgetDrainedRevoked();
      return Promise.resolve();
    }
    const offsets = todo.map((s) => ({ topic: s.topic, partition: s.partition, offset: String(s.window.committable) }));
    const marks = todo.map((s) => s.window.committable);
    this.committing = consumer
      .commitOffsets(offsets)
      .then(() => {
        todo.forEach((s, i) => {
          s.lastCommitted = marks[i]!;
          this.deps.metrics.committed.set({ topic: s.topic, partition: String(s.partition) }, Number(marks[i]));
        });
        this.forgetDrainedRevoked();
      })
      .catch((err: unknown) => this.deps.logger.warn({ err: describeError(err) }, 'offset commit failed; will retry'))
      .finally(() => {
        this.committing = null;
      });
    return this.committing;
  }

  /** Revoked partitions with nothing in flight and everything committed. */
  private forgetDrainedRevoked(): void {
    for (const [key, s] of this.revoked) {
      if (s.window.inFlight === 0 && s.lastCommitted === s.window.committable) this.revoked.delete(key);
    }
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const owned = new Set(Object.entries(assignment).flatMap(([t, ps]) => ps.map((p) => `${t}:${p}`)));
    this.assigned = owned;
    for (const key of owned) {
      // Back with us before its old runs finished: the fresh state commits
      // from now on, the old one must not move the offset any more.
      this.revoked.delete(key);
    }
    for (const [key, state] of this.partitions) {
      if (owned.has(key)) continue;
      // Revoked: no new work is taken from it (kafkajs stopped fetching it);
      // its runs in flight get the grace period to finish, and what they
      // finish is committed. The rest is aborted and redelivered to the new
      // owner (receivers deduplicate by run id).
      this.partitions.delete(key);
      // kafkajs keeps a paused partition paused across rebalances: resume it,
      // or it would never be fetched again if it comes back to us.
      state.resume?.();
      state.resume = null;
      this.deps.logger.info({ partition: state.partition, inFlight: state.window.inFlight }, 'partition revoked');
      // Kept until what it finished is committed (the commit forgets it then),
      // including runs that finished since the last commit.
      this.revoked.set(key, state);
      if (state.window.inFlight === 0) void this.commit();
      else setTimeout(() => state.abort.abort(), this.deps.window.shutdownGraceMs).unref();
    }
    this.followers.keepOnly((partition) => owned.has(`${this.deps.topic}:${partition}`));
    this.deps.logger.info({ assignment }, 'partitions assigned');
    void this.resumeFollows(assignment[this.deps.topic] ?? []);
  }

  private waitIdle(ms: number): Promise<boolean> {
    if (this.totalInFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Graceful stop: no new work, in-flight runs get the grace period, what is
   * done is committed, the rest is left for redelivery. Then leaves the group.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { logger, window } = this.deps;
    const consumer = this.consumer;
    if (this.commitTimer) clearInterval(this.commitTimer);
    if (consumer) {
      const topics = [...new Set([...this.partitions.values()].map((s) => s.topic))];
      try {
        if (topics.length) consumer.pause(topics.map((topic) => ({ topic })));
      } catch (err) {
        // The consumer is gone (a crash kafkajs did not restart): nothing is fetched anyway; runs in flight still get their grace.
        logger.warn({ err: describeError(err) }, 'consumer already stopped');
      }
    }
    logger.info({ inFlight: this.totalInFlight }, 'stopping: finishing in-flight runs');
    if (!(await this.waitIdle(window.shutdownGraceMs))) {
      logger.warn({ inFlight: this.totalInFlight }, 'grace period over: aborting in-flight runs (they will be redelivered)');
      for (const s of [...this.partitions.values(), ...this.revoked.values()]) s.abort.abort();
      await this.waitIdle(2_000);
    }
    await this.followers.stop();
    if (this.committing) await this.committing;
    await this.commit();
    if (consumer) await consumer.disconnect().catch((err: unknown) => logger.warn({ err: describeError(err) }, 'consumer disconnect failed'));
    this.running = false;
    logger.info('stopped');
  }
}

/**
 * A child logger made on first use: most runs log nothing, and pino's
 * child() (bindings serialised, redaction set up) is not free on a path
 * taken thousands of times a second.
 */
function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy(parent, {
    get(target, prop) {
      // Level checks need no child (and must not touch the proxy again).
      if (prop === 'isLevelEnabled') return target.isLevelEnabled.bind(target);
      if (prop === 'level') return target.level;
      child ??= target.child(bindings);
      const value = Reflect.get(child, prop, child);
      return typeof value === 'function' ? value.bind(child) : value;
    },
  });
}

function outcomeFields(outcome: InvocationOutcome): StatusFields {
  const common = {
    statusLabel: outcome.statusLabel,
    links: outcome.links,
    externalRunId: outcome.externalRunId,
    attempt: outcome.attempt,
    response: outcome.response,
  };
  switch (outcome.status) {
    case 'delivered':
      return { ...common, status: 'IN_PROGRESS', log: outcome.log ?? 'Delivered', summary: outcome.summary };
    case 'succeeded':
      return { ...common, status: 'SUCCESS', log: outcome.log, summary: outcome.summary };
    case 'failed':
      return { ...common, status: 'FAILURE', statusLabel: outcome.statusLabel ?? outcome.code, log: outcome.log, summary: outcome.summary };
  }
}
