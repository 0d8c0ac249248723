import { randomBytes } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { ActionCatalog } from '../catalog/catalog';
import type { StatusCodec } from '../codec/status-codec';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import { BatchProducer } from '../kafka/batch-producer';
import { StatusFields, StatusPublisher, buildUpdate } from '../status/publisher';
import { DeadLetterStore } from '../store/dead-letters';
import { QueryPool } from '../store/query-pool';
import { RunRow, RunStore } from '../store/run-store';
import { WATCH_HEADER } from '../store/writer-thread';
import { Applied, StoreMetrics, StoreWriter } from '../store/writer';
import { StoreUnavailableError } from '../errors';
import { ApiClients } from './clients';
import { ClientsFileWatcher } from './clients-watch';
import { TokenIssuer } from './tokens';
import { SignInGuard } from './sign-in-guard';
import { Counter } from 'prom-client';
import type { Approvals } from '../approvals/approvals';
import { SignOuts } from './sign-outs';

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

/**
 * The run store with what reads and writes it: the writer thread that
 * materializes the status and dead-letter topics, the point reads of this
 * thread, the query thread for lists, the publisher that turns API calls
 * into status updates, and the API's clients and tokens. The store is
 * written only by the writer thread; every change goes through the topic.
 */
export class RunsService {
  /** Point reads (a run, its logs and timeline) on a read-only connection. */
  readonly store: RunStore;
  /** Lists, counts and search, in the query thread. */
  readonly queries: QueryPool;
  readonly writer: StoreWriter;
  /** The router's own metrics (the console's overview reads them). */
  readonly registry: Registry;
  readonly clients: ApiClients;
  /** Re-reads API_CLIENTS_FILE when it changes. */
  private readonly clientsWatcher: ClientsFileWatcher | null;
  readonly tokens: TokenIssuer;
  /** Failed sign-ins: delayed, and 429 past a budget; right secrets always pass. */
  readonly guard = new SignInGuard();
  readonly signInFailures: Counter<'route' | 'limited'>;
  readonly catalog?: ActionCatalog;
  readonly logger: Logger;
  /** Manual approval, when the catalog has actions that require it (set by the App). */
  approvals?: Approvals;
  /** Signed-out console sessions, shared by every instance (with the console). */
  readonly signOuts: SignOuts | null;
  private readonly publisher: StatusPublisher;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly dlqTopic: string;
  private letters: DeadLetterStore | null = null;
  /** How long a write waits for the store to apply it (RUNS_APPLY_TIMEOUT_SECONDS). */
  private readonly applyTimeoutMs: number;

  constructor(deps: RunsServiceDeps) {
    const { config } = deps;
    this.logger = deps.logger.child({ component: 'runs' });
    this.catalog = deps.catalog;
    this.writer = new StoreWriter({ config, admin: deps.admin, logger: this.logger, metrics: new StoreMetrics(deps.registry) });
    this.store = new RunStore(this.writer.path);
    this.queries = new QueryPool(this.writer.path, config.topics.dlq, this.logger, deps.catalog?.titles());
    this.dlqTopic = config.topics.dlq;
    this.applyTimeoutMs = config.store.applyTimeoutSeconds * 1000;
    this.writer.on('opened', (m: { rebuilt: boolean }) => {
      this.store.reopen(m.rebuilt);
      this.letters = null;
      this.queries.reopen();
    });
    this.registry = deps.registry;
    this.signInFailures = new Counter({
      name: 'action_router_sign_in_failures_total',
      help: 'Failed sign-ins (token route and console), by whether a budget was spent (429)',
      labelNames: ['route', 'limited'],
      registers: [deps.registry],
    });
    this.publisher = new StatusPublisher(new BatchProducer(deps.producer), config.topics.status, deps.codec);
    this.clients = config.api.clientsFile ? ApiClients.load(config.api.clientsFile) : ApiClients.empty();
    this.clientsWatcher = config.api.clientsFile ? new ClientsFileWatcher(this.clients, config.api.clientsFile, this.logger) : null;
    this.tokens = new TokenIssuer(this.clients, config.api.tokenTtlSeconds, config.api.tokenSecret);
    this.signOuts = config.console.enabled
      ? new SignOuts({
          kafka: deps.kafka,
          admin: deps.admin,
          producer: deps.producer,
          topic: config.console.signOutTopic ?? `${config.topics.status}.sign-outs`,
          autoCreate: config.topics.autoCreate,
          sessionSeconds: config.console.sessionSeconds,
          logger: this.logger,
        })
      : null;
  }

  async start(): Promise<void> {
    if (this.clients.size === 0) this.logger.warn('API_CLIENTS_FILE is unset or empty: the runs API answers 401 to everything');
    this.clientsWatcher?.start();
    await this.writer.start();
    await this.signOuts?.start();
  }

  /** Reads API_CLIENTS_FILE again now (SIGHUP). */
  reloadClients(why = 'SIGHUP'): void {
    this.clientsWatcher?.reload(why);
  }

  async stop(): Promise<void> {
    this.clientsWatcher?.stop();
    await this.signOuts?.stop();
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
  async write(run: Pick<RunRow, 'id' | 'orgId' | 'action' | 'invocationType'>, actor: string, fields: StatusFields): Promise<{ applied: Applied | 'timeout'; run: RunRow }> {
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
  async writeApplied(run: Pick<RunRow, 'id' | 'orgId' | 'action' | 'invocationType'>, actor: string, fields: StatusFields): Promise<{ applied: Applied; run: RunRow }> {
    const health = this.writer.health();
    if (!health.ok) throw new StoreUnavailableError(`${health.reason}; nothing was written`);
    const written = await this.write(run, actor, fields);
    if (written.applied === 'timeout') {
      throw new StoreUnavailableError(`the update is on the status topic but the run store has not applied it within ${this.applyTimeoutMs / 1000} s (RUNS_APPLY_TIMEOUT_SECONDS); read the run again`);
    }
    return { applied: written.applied, run: written.run };
  }
}
