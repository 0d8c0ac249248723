import { Partitioners } from 'kafkajs';
import type { LiveOptions } from './console/live';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { loadCatalog, ActionCatalog } from './catalog/catalog';
import { Config, registryOptions, secretForOrg, secretInputKeyFor } from './config/config';
import { RegistryCodec, createRegistryCodec } from './codec/registry';
import { createTriggerEncoder } from './codec/trigger-encoder';
import { createStatusCodec } from './codec/status-codec';
import { InvokerRegistry, RoutingMode } from './invokers/index';
import type { Invoker } from './invokers/invoker';
import { JqEvaluator } from './mapping/jq';
import { PayloadTemplates } from './mapping/templates';
import type { JsonObject } from './model/json';
import { BatchProducer } from './kafka/batch-producer';
import { createKafka } from './kafka/client';
import type { Logger } from './log';
import { RouterMetrics } from './metrics/metrics';
import type { SessionOptions } from './console/session';
import { PeopleSignIn, providerNameOf } from './console/oidc/people';
import { Approvals } from './approvals/approvals';

/** How often a router looks for waiting runs past APPROVAL_TIMEOUT and approved runs not routed. */
const APPROVAL_SWEEP_MS = 2_000;
import { DeadLetterWriter } from './router/stages/dead-letter';
import { Intake, TriggerIntake } from './router/stages/intake';
import { ResumableRun, Router } from './router/router';
import { runFromRow } from './store/run-store';
import { polledByAgent } from './invokers/kafka/invoker';
import { pollingPayload } from './agent/polling-payload';
import { agentLedgerPlace } from './agent/agent';
import { AgentCallLedger } from './agent/call-ledger';

/** A createTopics refusal because another client created the topic first. */
function topicAlreadyExists(err: unknown): boolean {
  const e = err as { type?: string; errors?: { type?: string }[]; message?: string } | null;
  return e?.type === 'TOPIC_ALREADY_EXISTS' || Boolean(e?.errors?.length && e.errors.every((x) => x.type === 'TOPIC_ALREADY_EXISTS')) || /already exists/i.test(e?.message ?? '');
}

/** A metadata answer that passes when a topic being created reaches the broker. */
function topicNotYetThere(err: unknown): boolean {
  const e = err as { type?: string; message?: string } | null;
  return e?.type === 'UNKNOWN_TOPIC_OR_PARTITION' || e?.type === 'LEADER_NOT_AVAILABLE' || /does not host this topic-partition|leader/i.test(e?.message ?? '');
}

/** How long past a previous owner's grace period a call recorded STARTED is still waited for (its outcome being written). */
const DOUBT_MARGIN_MS = 5_000;

/** Kinds whose runs the router follows to their end (and follows again after a restart). */
const FOLLOWED_KINDS = ['GITHUB', 'GITLAB'];
import { StatusPublisher } from './status/publisher';
import { InvocationType } from './model/run';
import { statusUpdateSchema } from './codec/avro';
import { ConfigError, RouterError, describeError } from './errors';
import { RunsService } from './api/service';
import { StoreCallLedger } from './call-ledger';

export interface AppOptions {
  mode?: RoutingMode;
  /** Agent mode: the org whose topic is consumed. */
  orgId?: string;
  /** Builds the intake; the default is the router's trigger intake. */
  intake?: (deps: { registry?: RegistryCodec; catalog?: ActionCatalog; config: Config }) => Intake;
  /** Limit the invokers built (tests, agent mode). */
  invokers?: readonly InvocationType[];
  /** Agent mode: the invoker of every agent run (the payload mapping), in place of the type's own. */
  agentInvoker?: Invoker;
  metrics?: RouterMetrics;
  /** The consumer stopped for good; the process should exit and be restarted. */
  onFatal?: (err: unknown) => void;
  /** false: serve the run store and runs API only, route nothing (`action-router api`). */
  routing?: boolean;
}

/** Everything one running router (or agent) is made of, wired together. */
export class App {
  readonly kafka: Kafka;
  readonly metrics: RouterMetrics;
  readonly router: Router;
  readonly invokers: InvokerRegistry;
  private readonly catalog: ActionCatalog | undefined;
  private readonly templates: PayloadTemplates | undefined;
  /** The run store and runs API (router mode, unless RUNS_STORE=false). */
  readonly runs?: RunsService;
  /** Manual approval, when an action of the catalog requires it. */
  readonly approvals?: Approvals;
  private sweeper: NodeJS.Timeout | null = null;
  /** The run store read before each call (router mode with the store). */
  private readonly ledger?: StoreCallLedger;
  /** The agent's record of its own calls, read before each call (agent mode). */
  private readonly agentLedger?: AgentCallLedger;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly batch: BatchProducer;
  private started = false;
  private readonly registry?: RegistryCodec;
  private readonly status: StatusPublisher;
  private readonly routing: boolean;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
    options: AppOptions = {},
  ) {
    const mode = options.mode ?? 'router';
    this.routing = options.routing ?? true;
    this.metrics = options.metrics ?? new RouterMetrics();
    const metrics = this.metrics;
    this.kafka = createKafka(config.kafka, logger, '', {}, () => metrics.authFailed('kafka'));
    metrics.readinessSource = () => this.ready;
    // Idempotent: a batch kafkajs sends again after a lost answer (the broker wrote it) is not written twice, so a
    // run's org-topic message and its status updates appear once per send. kafkajs's own retries stay bounded (the
    // router's loops retry for as long as it runs); Kafka keeps order with idempotence up to 5 requests in flight.
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: true,
      maxInFlightRequests: 5,
      idempotent: true,
      retry: { retries: 8 },
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.admin = this.kafka.admin();
    this.batch = new BatchProducer(this.producer);
    const registryConfig = registryOptions(config);
    const registry = registryConfig ? createRegistryCodec({ ...registryConfig, onAuthFailure: () => metrics.authFailed('registry') }) : undefined;
    this.registry = registry;
    const catalog = config.actionsPath ? loadCatalog(config.actionsPath) : undefined;
    this.catalog = catalog;
    // `{{ }}` templates in invocation methods; the jq process starts with the first template.
    this.templates = mode === 'router' ? new PayloadTemplates(new JqEvaluator(config.jq, null)) : undefined;
    if (catalog) logger.info({ actions: catalog.size, path: config.actionsPath }, 'action catalog loaded');
    const intake = options.intake ? options.intake({ registry, catalog, config }) : new TriggerIntake(registry, catalog, (orgId) => secretInputKeyFor(config.signing, orgId));
    this.invokers = InvokerRegistry.create(
      {
        config,
        logger,
        producer: this.batch,
        admin: this.admin,
        secretFor: (orgId) => secretForOrg(config.signing, orgId),
      },
      options.invokers,
      options.agentInvoker,
    );
    const statusCodec = createStatusCodec(config.topics.status, registry);
    if (mode === 'router' && config.store.enabled) {
      this.runs = new RunsService({
        config,
        kafka: this.kafka,
        admin: this.admin,
        producer: this.producer,
        codec: statusCodec,
        logger,
        registry: this.metrics.registry,
        catalog,
        encodeTrigger: createTriggerEncoder(config.topics.trigger, registry),
      });
    }
    const needApproval = mode === 'router' && catalog ? catalog.approvalActions() : [];
    if (needApproval.length > 0) {
      const which = needApproval.slice(0, 3).join(', ');
      if (!this.runs) throw new ConfigError('RUNS_STORE', `actions ${which} require approval, which needs the run store: RUNS_STORE must not be false`);
      if (!config.approvals.secret) throw new ConfigError('APPROVAL_SECRET', `actions ${which} require approval: set APPROVAL_SECRET (32 characters at least, the same for every router) to seal waiting runs' events`);
      this.approvals = new Approvals({
        runs: this.runs,
        catalog: catalog!,
        withRoles: (orgId, roles) => this.runs!.clients.withRoles(orgId, roles),
        secret: config.approvals.secret,
        timeoutMs: config.approvals.timeoutMs ?? null,
        producer: this.producer,
        triggerTopic: config.topics.trigger,
        notifier: this.invokers.get('WEBHOOK'),
        logger,
      });
      this.runs.approvals = this.approvals;
    }
    // No run invoked twice: the store is read before each call (router mode); an agent, which has no store, keeps a
    // file of its own calls. One that cannot be written stops the start, naming AGENT_LEDGER_PATH or DATA_DIR.
    this.ledger =
      this.runs && mode === 'router' && config.noRepeat
        ? new StoreCallLedger({ admin: this.admin, statusTopic: config.topics.status, runs: this.runs, metrics: this.metrics, logger: logger.child({ component: 'ledger' }), doubtMs: config.window.shutdownGraceMs + DOUBT_MARGIN_MS })
        : undefined;
    this.agentLedger =
      mode === 'agent' && config.noRepeat
        ? new AgentCallLedger({ ...agentLedgerPlace(config, options.orgId ?? ''), retentionMs: config.agent.ledgerRetentionHours * 3_600_000, logger: logger.child({ component: 'ledger' }) })
        : undefined;
    const topic = mode === 'agent' ? (config.agent.topic ?? config.topics.orgTemplate.split('{orgId}').join(options.orgId ?? '')) : config.topics.trigger;
    this.router = new Router({
      kafka: this.kafka,
      logger: logger.child({ component: mode }),
      metrics: this.metrics,
      intake,
      invokers: this.invokers,
      status: (this.status = new StatusPublisher(this.batch, config.topics.status, statusCodec)),
      deadLetters: new DeadLetterWriter(this.batch, config.topics.dlq, (err) => {
        this.metrics.deadLettersDropped.inc({ reason: err.code });
        logger.error({ err: describeError(err) }, 'a dead letter cannot be written even trimmed; it is given up');
      }),
      mode,
      topic,
      // An agent is its own consumer group: sharing the router's would mix
      // two subscriptions in one group and rebalance both.
      groupId: mode === 'agent' ? (config.agent.groupId ?? `${config.groupId}-agent`) : config.groupId,
      fromBeginning: mode === 'agent' ? config.agent.offsetReset === 'earliest' : true,
      window: config.window,
      onFatal: options.onFatal,
      followable: this.runs ? (partitions) => this.followable(partitions) : undefined,
      agentPayload: (run) => (polledByAgent(run, config.agent.delivery) ? pollingPayload(run) : null),
      gate: this.approvals,
      templates: this.templates,
      // With the ledger, the owner comes from the read stage "once" uses too.
      ownerOf: this.ledger ? (runId) => this.ledger!.ownerOf(runId) : this.runs ? (runId) => this.runs!.store.orgOf(runId) : undefined,
      ledger: this.ledger ?? this.agentLedger,
    });
  }

  get ready(): boolean {
    return this.readiness().ready;
  }

  /** Whether this instance does its job, and what is wrong when it does not. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (!this.started) reasons.push('starting');
    if (this.routing && !this.router.ready) reasons.push('the router is not consuming its topic');
    // Not ready while status updates cannot be written: runs would pile up unreported.
    if (!this.status.healthy) reasons.push('status updates cannot be written');
    const store = this.runs?.writer.health();
    if (store && !store.ok) reasons.push(store.reason ?? 'the run store cannot apply');
    const behind = this.ledger?.problem() ?? this.agentLedger?.problem();
    if (behind) reasons.push(behind);
    return { ready: reasons.length === 0, reasons };
  }

  /** Runs left unfinished while followed, from the store once it caught up. */
  private async followable(partitions: number[]): Promise<ResumableRun[]> {
    const runs = this.runs!;
    await runs.writer.whenCaughtUp();
    return runs.store.followable(FOLLOWED_KINDS, partitions).map((row) => ({
      run: runFromRow(row),
      externalRunId: row.externalRunId!,
      startedAt: row.createdAt,
      partition: row.triggerPartition!,
    }));
  }

  /** People's sign-in through the OIDC provider, once discovered at start (OIDC_ISSUER_URL). */
  people?: PeopleSignIn;

  /** The console's settings when it is served (with the run store, unless CONSOLE=false). */
  get console(): (SessionOptions & { live: Partial<LiveOptions> }) | undefined {
    const { console: c, api } = this.config;
    if (!this.runs || !c.enabled) return undefined;
    const live = { maxClients: c.liveMaxStreams, maxPerOrg: c.liveMaxPerOrg, maxPerClient: c.liveMaxPerClient };
    const provider = providerNameOf(this.config);
    return { seconds: c.sessionSeconds, secureCookie: c.secureCookie, tokenSecret: api.tokenSecret, live, people: () => this.people, provider, clientSignIn: this.config.clientSignIn };
  }

  /** CONSOLE_ALLOWED_HOSTS: the Host names the HTTP server answers as (empty: any). */
  get allowedHosts(): string[] {
    return this.config.console.allowedHosts;
  }

  get trustProxy(): boolean | number | string[] {
    return this.config.trustProxy;
  }

  get claimSeconds(): number {
    return this.config.agent.claimSeconds;
  }

  async start(): Promise<void> {
    await this.checkTemplates();
    await this.prepareRegistry();
    await this.admin.connect();
    await this.producer.connect();
    await this.ensureTopics(this.router.topic);
    await this.runs?.start();
    // People's sign-in (OIDC): the provider is discovered before the start counts as done.
    if (this.runs && this.config.console.enabled && this.config.oidc.issuerUrl) this.people = await PeopleSignIn.start(this.config, this.runs.signOuts, this.logger.child({ component: 'oidc' }));
    if (this.routing) await this.router.start();
    if (this.approvals && this.routing) {
      // Each router sweeps the runs of the trigger partitions it owns.
      this.sweeper = setInterval(() => {
        void this.approvals!.sweep(this.router.ownedPartitions()).catch((err) => this.logger.warn({ err: describeError(err) }, 'approval sweep failed'));
      }, APPROVAL_SWEEP_MS);
      this.sweeper.unref();
    }
    this.started = true;
  }

  /**
   * Registers the status subject (or checks the pre-registered one) before
   * anything is consumed: a registry that refuses it is a configuration
   * error, reported once, here. An unreachable one is waited for by the
   * writes themselves (readiness turns false meanwhile).
   */
  private async prepareRegistry(): Promise<void> {
    if (!this.registry) return;
    const subject = `${this.config.topics.status}-value`;
    try {
      await this.registry.prepare(subject, statusUpdateSchema);
    } catch (err) {
      if (err instanceof RouterError && err.retriable) {
        this.logger.warn({ subject, err: describeError(err) }, 'schema registry unreachable at start; status writes wait for it');
        return;
      }
      throw new ConfigError('SCHEMA_REGISTRY_URL', describeError(err));
    }
  }

  /**
   * The topics this instance reads and writes exist and every partition has
   * a leader, before anything subscribes. On a new install every role
   * starts at once: another instance may be creating the same topics (its
   * creation winning is not an error), or may have just created them
   * (listed, but not yet hosted: "This server does not host this
   * topic-partition"). Both are waited for, up to KAFKA_START_TIMEOUT_MS.
   */
  private async ensureTopics(source: string): Promise<void> {
    const { topics } = this.config;
    const needed = [source, topics.status, topics.dlq];
    if (topics.autoCreate) {
      const existing = new Set(await this.admin.listTopics());
      const wanted = needed.filter((t) => !existing.has(t));
      if (wanted.length > 0) {
        const created = await this.admin
          .createTopics({ topics: wanted.map((topic) => ({ topic, numPartitions: topics.partitions })), waitForLeaders: true })
          .catch((err: unknown) => {
            if (topicAlreadyExists(err)) return false;
            throw err;
          });
        if (created) this.logger.info({ topics: wanted, partitions: topics.partitions }, 'created missing topics');
        else this.logger.info({ topics: wanted }, 'another instance created the topics; waiting for their leaders');
      }
    }
    await this.waitForLeaders(needed);
  }

  /** Every partition of these topics has a leader, or a ConfigError naming KAFKA_START_TIMEOUT_MS (and TOPICS_AUTO_CREATE when one is missing). */
  private async waitForLeaders(names: string[]): Promise<void> {
    const timeoutMs = this.config.kafka.startTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let waiting = names;
    for (;;) {
      let last: unknown = null;
      try {
        const { topics } = await this.admin.fetchTopicMetadata({ topics: waiting });
        waiting = topics.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0)).map((t) => t.name);
        if (waiting.length === 0) return;
      } catch (err) {
        if (!topicNotYetThere(err)) throw err;
        last = err;
      }
      if (Date.now() >= deadline) {
        const why = last ? describeError(last) : 'partitions without a leader';
        const hint = this.config.topics.autoCreate ? '' : ': create them, or set TOPICS_AUTO_CREATE=true';
        throw new ConfigError('KAFKA_START_TIMEOUT_MS', `topics ${waiting.join(', ')} not ready after ${timeoutMs} ms (${why})${hint}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Graceful stop; safe to call more than once. */
  /** Every catalog action's templates compile, or the start stops naming the action and the field. */
  private async checkTemplates(): Promise<void> {
    if (!this.templates || !this.catalog) return;
    for (const def of this.catalog.all()) {
      try {
        await this.templates.check(def.invocationMethod as JsonObject & { type: string }, `action ${def.identifier}, invocationMethod`);
      } catch (err) {
        throw new ConfigError('ACTIONS_PATH', (err as Error).message);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    await this.router.stop();
    // No call is under way any more: every end is recorded, and no run waits for the store.
    this.agentLedger?.close();
    this.ledger?.stop();
    // Notifications under way end before the invokers and the store they use.
    await this.approvals?.stop();
    await this.invokers.close();
    await this.templates?.close();
    await this.runs?.stop();
    this.batch.flush();
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
    this.started = false;
  }
}
