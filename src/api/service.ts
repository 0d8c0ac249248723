import { randomBytes } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { ActionCatalog } from '../catalog/catalog';
import type { StatusCodec } from '../codec/status-codec';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import { BatchProducer } from '../kafka/batch-producer';
import { StatusFields, StatusPublisher, buildUpdate } from '../status/publisher';
import { Applied, ApplyLoop, StoreMetrics, WATCH_HEADER } from '../store/apply-loop';
import { DeadLetterLoop, DeadLetterStore } from '../store/dead-letters';
import { RunRow, RunStore } from '../store/run-store';
import { ApiClients } from './clients';
import { FailureLimiter, TokenIssuer } from './tokens';
import type { Approvals } from '../approvals/approvals';

export interface RunsServiceDeps {
  config: Config;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  codec: StatusCodec;
  logger: Logger;
  registry: Registry;
  catalog?: ActionCatalog;
}

/** How long a write waits for the store to apply it before answering anyway. */
const APPLY_TIMEOUT_MS = 10_000;

/**
 * The run store with what reads and writes it: the apply loop that
 * materializes the status topic, the writer that turns API calls into
 * status updates, and the API's clients and tokens. The store is written
 * only by the apply loop; every change goes through the topic.
 */
export class RunsService {
  readonly store: RunStore;
  readonly loop: ApplyLoop;
  /** The dead-letter topic, kept for the console. */
  readonly deadLetters: DeadLetterStore;
  readonly deadLetterLoop: DeadLetterLoop;
  /** The router's own metrics (the console's overview reads them). */
  readonly registry: Registry;
  readonly clients: ApiClients;
  readonly tokens: TokenIssuer;
  readonly limiter = new FailureLimiter();
  readonly catalog?: ActionCatalog;
  readonly logger: Logger;
  /** Manual approval, when the catalog has actions that require it (set by the App). */
  approvals?: Approvals;
  private readonly publisher: StatusPublisher;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(deps: RunsServiceDeps) {
    const { config } = deps;
    this.logger = deps.logger.child({ component: 'runs' });
    this.catalog = deps.catalog;
    this.store = new RunStore(config.store.path ?? ':memory:', config.topics.status);
    this.loop = new ApplyLoop({
      kafka: deps.kafka,
      admin: deps.admin,
      store: this.store,
      codec: deps.codec,
      logger: this.logger,
      metrics: new StoreMetrics(deps.registry),
    });
    this.registry = deps.registry;
    this.deadLetters = new DeadLetterStore(this.store.db, config.topics.dlq);
    this.deadLetterLoop = new DeadLetterLoop({ kafka: deps.kafka, admin: deps.admin, store: this.deadLetters, logger: this.logger });
    this.publisher = new StatusPublisher(new BatchProducer(deps.producer), config.topics.status, deps.codec);
    this.clients = config.api.clientsFile ? ApiClients.load(config.api.clientsFile) : ApiClients.empty();
    this.tokens = new TokenIssuer(this.clients, config.api.tokenTtlSeconds, config.api.tokenSecret);
  }

  async start(): Promise<void> {
    if (this.clients.size === 0) this.logger.warn('API_CLIENTS_FILE is unset or empty: the runs API answers 401 to everything');
    // The apply loop first: it empties the file when the status topic was recreated.
    await this.loop.start();
    await this.deadLetterLoop.start();
  }

  async stop(): Promise<void> {
    await this.deadLetterLoop.stop();
    await this.loop.stop();
    this.store.close();
  }

  /**
   * Publishes an update of `run` (source BACKEND) and waits until the store
   * applied it: the answer shows the run with it. Writes to one run from
   * this instance go one at a time; between instances the topic's order
   * decides, and `applied.result` says whether this write was applied
   * ('timeout': the broker has it, the store has not applied it yet).
   */
  async write(run: Pick<RunRow, 'id' | 'orgId' | 'action' | 'invocationType'>, actor: string, fields: StatusFields): Promise<{ applied: Applied | 'timeout'; run: RunRow }> {
    const previous = this.locks.get(run.id) ?? Promise.resolve();
    const mine = previous.then(async () => {
      const update = buildUpdate({ runId: run.id, orgId: run.orgId, action: run.action }, { source: 'BACKEND', invocationType: run.invocationType, actor, ...fields });
      const mark = randomBytes(12).toString('base64url');
      // Waiting starts before the write: the store may apply it before the ack arrives.
      const applied = this.loop.awaitApplied(mark, APPLY_TIMEOUT_MS);
      await this.publisher.publish(update, { [WATCH_HEADER]: mark });
      return { applied: await applied, run: this.store.getRun(run.id)! };
    });
    const settled = mine.catch(() => undefined);
    this.locks.set(run.id, settled);
    void settled.then(() => {
      if (this.locks.get(run.id) === settled) this.locks.delete(run.id);
    });
    return mine;
  }
}
