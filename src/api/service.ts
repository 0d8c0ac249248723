import type { Admin, Kafka, Producer } from 'kafkajs';
import { Counter, Registry } from 'prom-client';
import type { ActionCatalog, SecretKeyFor } from '../catalog/catalog';
import type { StatusCodec } from '../codec/status-codec';
import { TriggerEncoder, createTriggerEncoder } from '../codec/trigger-encoder';
import { Config, secretInputKeyFor } from '../config/config';
import type { Logger } from '../log';
import { RunStoreService } from '../store/service';
import { ApiClients } from './clients';
import { ClientsFileWatcher } from './clients-watch';
import { TokenIssuer } from './tokens';
import { SignInGuard } from './sign-in-guard';
import { SignOuts } from './sign-outs';
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
  /** How an executed run's trigger event is written (JSON, or Avro through the registry). */
  encodeTrigger?: TriggerEncoder;
}

/**
 * What the runs API and the console serve from: the run store's service,
 * with the API's clients and tokens, the sign-in guard and sign-outs.
 */
export class RunsService extends RunStoreService {
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
  /** Manual approval, when the catalog has actions that require it (given by the App once built). */
  approvals?: Approvals;
  /** Signed-out console sessions, shared by every instance (with the console). */
  readonly signOuts: SignOuts | null;
  /** Where executed runs' trigger events go (TRIGGER_TOPIC), and the producer that writes them. */
  readonly triggerTopic: string;
  readonly producer: Producer;
  readonly encodeTrigger: TriggerEncoder;
  /** The cluster, for reading dead letters back (re-sending them). */
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** The router's consumer group: a dead-letter read uses a group of its own named after it. */
  readonly groupId: string;
  /** The key an org's secret inputs are encrypted under before an executed run's event is written. */
  readonly secretKeyFor: SecretKeyFor;

  constructor(deps: RunsServiceDeps) {
    const { config } = deps;
    const logger = deps.logger.child({ component: 'runs' });
    super({ config, admin: deps.admin, producer: deps.producer, codec: deps.codec, logger, registry: deps.registry, actionTitles: deps.catalog?.titles() });
    this.logger = logger;
    this.catalog = deps.catalog;
    this.triggerTopic = config.topics.trigger;
    this.producer = deps.producer;
    this.encodeTrigger = deps.encodeTrigger ?? createTriggerEncoder(config.topics.trigger);
    this.kafka = deps.kafka;
    this.admin = deps.admin;
    this.groupId = config.groupId;
    this.secretKeyFor = (orgId) => secretInputKeyFor(config.signing, orgId);
    this.registry = deps.registry;
    this.signInFailures = new Counter({
      name: 'action_router_sign_in_failures_total',
      help: 'Failed sign-ins (token route and console), by whether a budget was spent (429)',
      labelNames: ['route', 'limited'],
      registers: [deps.registry],
    });
    this.clients = config.api.clientsFile ? ApiClients.load(config.api.clientsFile) : ApiClients.empty();
    this.clientsWatcher = config.api.clientsFile ? new ClientsFileWatcher(this.clients, config.api.clientsFile, this.logger) : null;
    this.tokens = new TokenIssuer(this.clients, config.api.tokenTtlSeconds, config.api.tokenSecret);
    this.signOuts = config.console.enabled
      ? new SignOuts({
          kafka: deps.kafka,
          admin: deps.admin,
          producer: deps.producer,
          topic: config.console.signOutTopic,
          autoCreate: config.topics.autoCreate,
          sessionSeconds: config.console.sessionSeconds,
          logger: this.logger,
        })
      : null;
  }

  override async start(): Promise<void> {
    if (this.clients.size === 0) this.logger.warn('API_CLIENTS_FILE is unset or empty: the runs API answers 401 to everything');
    this.clientsWatcher?.start();
    await super.start();
    await this.signOuts?.start();
  }

  /** Reads API_CLIENTS_FILE again now (SIGHUP). */
  reloadClients(why = 'SIGHUP'): void {
    this.clientsWatcher?.reload(why);
  }

  override async stop(): Promise<void> {
    this.clientsWatcher?.stop();
    await this.signOuts?.stop();
    await super.stop();
  }
}
