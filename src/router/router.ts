import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../config/config';
import { describeError } from '../errors';
import type { InvokerRegistry, RoutingMode } from '../invokers/index';
import type { Logger } from '../log';
import type { RouterMetrics } from '../metrics/metrics';
import type { FrozenRun } from '../model/run';
import type { PayloadTemplates } from '../mapping/templates';
import type { StatusPublisher } from '../status/publisher';
import { Followers } from './followers';
import { PartitionBook, PartitionState } from './partitions';
import { Pipeline } from './pipeline';
import { ResumableRun, Resumer } from './resume';
import type { DeadLetterWriter } from './stages/dead-letter';
import type { RunGate } from './stages/gate';
import type { Intake } from './stages/intake';
import { StatusReporter } from './stages/report';
import type { OwnerOf } from './stages/resolve';
import type { CallLedger } from './stages/once';

export type { ResumableRun } from './resume';

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
  /** Where a new group starts: the topic's beginning (default), or its end. */
  fromBeginning?: boolean;
  groupId: string;
  window: Config['window'];
  /** Called when the consumer stopped for good (kafkajs gave up restarting it). */
  onFatal?: (err: unknown) => void;
  /** Unfinished followed runs of these trigger partitions (see Resumer). */
  followable?: (partitions: number[]) => Promise<ResumableRun[]>;
  /** What Port's polling agent gets for a run (claim-pending), or null when no agent polls for it. */
  agentPayload?: (run: FrozenRun) => string | null;
  /** Evaluates `{{ }}` templates of the invocation method before the call (router mode). */
  templates?: PayloadTemplates;
  /** Holds runs of actions that require a decision (manual approval); router mode only. */
  gate?: RunGate;
  /**
   * The org a run id already belongs to, as far as the run store knows. An
   * event whose run id names another org's run is dead-lettered
   * RUN_ID_CONFLICT and touches nothing of that run.
   */
  ownerOf?: OwnerOf;
  /** The memory of calls made, read before each call; told of each assignment when it follows the status topic (the run store). */
  ledger?: CallLedger & { assigned?(): void };
}

/**
 * The consume loop: joins the group, admits each fetched message into its
 * partition's window (PartitionBook) and hands it to the Pipeline; runs
 * complete out of order and only the low-water mark is committed.
 */
export class Router {
  private consumer: Consumer | null = null;
  private readonly book: PartitionBook;
  private readonly pipeline: Pipeline;
  /** Runs followed by this process, each owned by its trigger partition. */
  private readonly followers = new Followers();
  private readonly resumer: Resumer | null;
  /** `topic:partition` of the partitions assigned to this router now. */
  private assigned = new Set<string>();
  private stopping = false;
  private running = false;
  private commitTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: RouterDeps) {
    const reporter = new StatusReporter(deps.status, deps.metrics);
    this.book = new PartitionBook(deps.window, deps.metrics, deps.logger);
    this.pipeline = new Pipeline({ ...deps, reporter, followers: this.followers });
    this.resumer =
      deps.followable && deps.mode === 'router'
        ? new Resumer({ followable: deps.followable, invokers: deps.invokers, followers: this.followers, reporter, logger: deps.logger })
        : null;
  }

  /** True while the consumer is in the group and fetching. */
  get ready(): boolean {
    return this.running && !this.stopping;
  }

  get topic(): string {
    return this.deps.topic;
  }

  get inFlight(): number {
    return this.book.inFlight;
  }

  async start(): Promise<void> {
    const { kafka, groupId, topic, logger, window } = this.deps;
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: window.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(window.sessionTimeoutMs / 10)),
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
    this.book.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment));
    consumer.on(consumer.events.REBALANCING, () => void this.book.commit());
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
    await consumer.subscribe({ topic, fromBeginning: this.deps.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 16,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.running = true;
    this.commitTimer = setInterval(() => void this.book.commit(), window.commitIntervalMs);
    logger.info({ topic, groupId, mode: this.deps.mode }, 'consuming');
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }: EachBatchPayload): Promise<void> {
    const state = this.book.state(batch.topic, batch.partition);
    const last = batch.messages[batch.messages.length - 1];
    if (last) {
      const lag = Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n);
      this.deps.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, lag));
    }
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping) break;
      const offset = BigInt(message.offset);
      const admission = this.book.admit(state, offset);
      if (admission === 'full') {
        // Backpressure: stop fetching this partition; unresolved messages
        // are fetched again once it resumes.
        if (!state.resume) state.resume = pause();
        break;
      }
      if (admission === 'admitted') this.track(state, message, offset);
      resolveOffset(message.offset);
    }
    await heartbeat();
  }

  private track(state: PartitionState, message: EachBatchPayload['batch']['messages'][number], offset: bigint): void {
    const source = { topic: state.topic, partition: state.partition };
    void this.pipeline.process(message, source, state.abort.signal).then((end) => this.book.settle(state, offset, end === 'done'));
  }

  /** Commits every partition's low-water mark that moved since the last commit. */
  commit(): Promise<void> {
    return this.book.commit();
  }

  /** The trigger partitions this router owns now. */
  ownedPartitions(): number[] {
    const prefix = `${this.deps.topic}:`;
    return [...this.assigned].filter((k) => k.startsWith(prefix)).map((k) => Number(k.slice(prefix.length)));
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const owned = new Set(Object.entries(assignment).flatMap(([t, ps]) => ps.map((p) => `${t}:${p}`)));
    // Before any message of the new partitions: their runs are checked against the store once it holds the status topic as it is now.
    this.deps.ledger?.assigned?.();
    this.assigned = owned;
    this.book.assign(owned);
    const owns = (partition: number) => this.assigned.has(`${this.deps.topic}:${partition}`);
    this.followers.keepOnly(owns);
    this.deps.logger.info({ assignment }, 'partitions assigned');
    void this.resumer?.resume(assignment[this.deps.topic] ?? [], owns, () => this.stopping);
  }

  /**
   * Graceful stop: no new work, in-flight runs get the grace period, what is
   * done is committed, the rest is left for redelivery. Then leaves the group.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.book.freeze();
    const { logger, window } = this.deps;
    const consumer = this.consumer;
    if (this.commitTimer) clearInterval(this.commitTimer);
    const topics = this.book.topics();
    if (consumer && topics.length) {
      try {
        consumer.pause(topics.map((topic) => ({ topic })));
      } catch (err) {
        // The consumer is gone (a crash kafkajs did not restart): nothing is fetched anyway; runs in flight still get their grace.
        logger.warn({ err: describeError(err) }, 'consumer already stopped');
      }
    }
    logger.info({ inFlight: this.book.inFlight }, 'stopping: finishing in-flight runs');
    if (!(await this.book.waitIdle(window.shutdownGraceMs))) {
      logger.warn({ inFlight: this.book.inFlight }, 'grace period over: aborting in-flight runs (they will be redelivered)');
      this.book.abortAll();
      await this.book.waitIdle(2_000);
    }
    await this.followers.stop();
    await this.book.finalCommit();
    if (consumer) await consumer.disconnect().catch((err: unknown) => logger.warn({ err: describeError(err) }, 'consumer disconnect failed'));
    this.running = false;
    logger.info('stopped');
  }
}
