import { randomBytes } from 'node:crypto';
import type { Admin, Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { StatusCodec } from '../codec/status-codec';
import type { Config } from '../config/config';
import { StoreUnavailableError } from '../errors';
import { BatchProducer } from '../kafka/batch-producer';
import type { Logger } from '../log';
import { StatusFields, StatusPublisher, buildUpdate } from '../status/publisher';
import { DeadLetterStore } from './dead-letters';
import { QueryPool } from './query-pool';
import { RunRow, RunStore } from './run-store';
import { StoreMetrics } from './metrics';
import { Applied, StoreWriter } from './writer';
import { WATCH_HEADER } from './writer-protocol';

export interface RunStoreServiceDeps {
  config: Config;
  admin: Admin;
  producer: Producer;
  codec: StatusCodec;
  logger: Logger;
  registry: Registry;
  /** Action titles by identifier, for lists (the catalog's). */
  actionTitles?: Record<string, string>;
}

/** The fields of a run a write needs. */
export type RunRef = Pick<RunRow, 'id' | 'orgId' | 'action' | 'invocationType'>;

/**
 * The run store with what reads and writes it: the writer thread that
 * materializes the status and dead-letter topics, the point reads of this
 * thread, the query thread for lists, and the publisher that turns a
 * change into a status update. The store is written only by the writer
 * thread; every change goes through the topic.
 */
export class RunStoreService {
  /** Point reads (a run, its logs and timeline) on a read-only connection. */
  readonly store: RunStore;
  /** Lists, counts and search, in the query thread. */
  readonly queries: QueryPool;
  readonly writer: StoreWriter;
  private readonly publisher: StatusPublisher;
  private readonly locks = new Map<string, Promise<unknown>>();
  readonly dlqTopic: string;
  private letters: DeadLetterStore | null = null;
  /** How long a write waits for the store to apply it (RUNS_APPLY_TIMEOUT_SECONDS). */
  private readonly applyTimeoutMs: number;

  constructor(deps: RunStoreServiceDeps) {
    const { config, logger } = deps;
    const metrics = new StoreMetrics(deps.registry);
    this.writer = new StoreWriter({ config, admin: deps.admin, logger, metrics });
    this.store = new RunStore(this.writer.path);
    metrics.openRunsSource = () => this.store.openRuns();
    this.queries = new QueryPool(this.writer.path, config.topics.dlq, logger, deps.actionTitles);
    this.dlqTopic = config.topics.dlq;
    this.applyTimeoutMs = config.store.applyTimeoutSeconds * 1000;
    this.writer.on('opened', (m: { rebuilt: boolean }) => {
      this.store.reopen(m.rebuilt);
      this.letters = null;
      this.queries.reopen();
    });
    this.publisher = new StatusPublisher(new BatchProducer(deps.producer), config.topics.status, deps.codec);
  }

  async start(): Promise<void> {
    await this.writer.start();
  }

  async stop(): Promise<void> {
    await this.writer.stop();
    await this.queries.close();
    this.store.close();
  }

  /** The dead-letter store, read through this thread's connection (one letter at a time). */
  get deadLetters(): DeadLetterStore {
    this.letters ??= new DeadLetterStore(this.store.connection, this.dlqTopic);
    return this.letters;
  }

  /**
   * Publishes an update of `run` (source BACKEND) and waits until the store
   * applied it: the answer shows the run with it. Writes to one run from
   * this instance go one at a time; between instances the topic's order
   * decides, and `applied.result` says whether this write was applied
   * ('timeout': the broker has it, the store has not applied it yet).
   */
  async write(run: RunRef, actor: string, fields: StatusFields): Promise<{ applied: Applied | 'timeout'; run: RunRow }> {
    const previous = this.locks.get(run.id) ?? Promise.resolve();
    const mine = previous.then(async () => {
      const update = buildUpdate({ runId: run.id, orgId: run.orgId, action: run.action }, { source: 'BACKEND', invocationType: run.invocationType, actor, ...fields });
      const mark = randomBytes(12).toString('base64url');
      // Waiting starts before the write: the store may apply it before the ack arrives.
      const waiting = this.writer.awaitApplied(mark, this.applyTimeoutMs);
      try {
        await this.publisher.publish(update, { [WATCH_HEADER]: mark });
      } catch (err) {
        waiting.cancel();
        throw err;
      }
      return { applied: await waiting.applied, run: this.store.getRun(run.id)! };
    });
    const settled = mine.catch(() => undefined);
    this.locks.set(run.id, settled);
    void settled.then(() => {
      if (this.locks.get(run.id) === settled) this.locks.delete(run.id);
    });
    return mine;
  }

  /**
   * `write` for the API: refused at once (503, nothing written) while the
   * store cannot apply, and 503 when the write is not applied in time,
   * never an answer with the run as it was before.
   */
  async writeApplied(run: RunRef, actor: string, fields: StatusFields): Promise<{ applied: Applied; run: RunRow }> {
    const health = this.writer.health();
    if (!health.ok) throw new StoreUnavailableError(`${health.reason}; nothing was written`);
    const written = await this.write(run, actor, fields);
    if (written.applied === 'timeout') {
      throw new StoreUnavailableError(`the update is on the status topic but the run store has not applied it within ${this.applyTimeoutMs / 1000} s (RUNS_APPLY_TIMEOUT_SECONDS); read the run again`);
    }
    return { applied: written.applied, run: written.run };
  }
}
