/**
 * The run store's writer, in a worker thread of its own: the status and
 * dead-letter topics' consumers, their decoding, and the only write
 * connection to the store's file. The routing thread starts it
 * (StoreWriter), reads the file through read-only connections and hears
 * from it through messages (writer-protocol.ts). Nothing here can hold up
 * routing: a slow disk, a lock held by another process or a crash stays in
 * this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { registryOptions } from '../config/config';
import { createRegistryCodec } from '../codec/registry';
import { createStatusCodec } from '../codec/status-codec';
import { createKafka } from '../kafka/client';
import { Logger, createLogger } from '../log';
import { DeadLetterStore } from './dead-letters';
import { commitApplied, dropGroups, resumePositions, startMirrorConsumer } from './mirror';
import { ApplyResult, RunWriter, WriterEntry } from './run-writer';
import { migrate, openWritable, wipe } from './schema';
import { StoreFile } from './store-file';
import { lowerThisThread, threadInfo } from './thread-priority';
import { EntryDecoder } from './entry-decoder';
import { dropTimeoutNegativeWarnings } from '../threads';
import type { FromWriter, ToWriter, WriterData } from './writer-protocol';


/** A failing write is tried again after this long (doubling up to the maximum). */
/** How often the file is looked at (deleted or replaced under the store). */
const FILE_CHECK_MS = 2_000;

interface Waiter {
  resolve: () => void;
  heartbeat: () => Promise<void>;
}

class WriterThread {
  private readonly logger: Logger;
  private db!: Database.Database;
  private writer!: RunWriter;
  private deadLetters!: DeadLetterStore;
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private readonly decoder: EntryDecoder;
  private runsConsumer: Consumer | null = null;
  private dlqConsumer: Consumer | null = null;
  /** The groups of this thread's mirrors, deleted at stop. */
  private readonly groups: string[] = [];
  /** Per partition, the next offset not yet taken into the pipeline: what is below was applied or is queued. */
  private readonly taken = new Map<number, bigint>();
  private readonly highs = new Map<number, string>();
  private highAtStart = new Map<number, bigint>();
  private applied = new Map<number, bigint>();
  private caughtUp = false;
  private pending: WriterEntry[] = [];
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** Offset commits go one after another, off the apply path. */
  private committing: Promise<void> = Promise.resolve();
  private flushing: Promise<void> | null = null;
  private stopping = false;
  private file!: StoreFile;
  private fetched = 0;
  private fileTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly data: WriterData,
    private readonly post: (m: FromWriter) => void,
  ) {
    this.logger = createLogger(data.logLevel).child({ component: 'store-writer' });
    this.kafka = createKafka(data.config.kafka, this.logger, '-store');
    this.admin = this.kafka.admin();
    const registry = registryOptions(data.config);
    this.decoder = new EntryDecoder(createStatusCodec(data.config.topics.status, registry ? createRegistryCodec(registry) : undefined), this.logger);
  }

  async start(): Promise<void> {
    const { path, config } = this.data;
    const statusTopic = config.topics.status;
    const opened = openWritable(path, statusTopic, { cacheMb: this.data.cacheMb, mmapMb: this.data.mmapMb });
    if (opened.movedTo) {
      this.logger.warn({ RUNS_DB_PATH: path, movedTo: opened.movedTo }, 'the run store file (RUNS_DB_PATH) was not a readable store: moved aside, rebuilding from the status topic');
    }
    this.db = opened.db;
    this.file = new StoreFile(path, this.db, this.logger, this.post, () => this.stopping);
    this.writer = new RunWriter(this.db);
    this.post({ type: 'opened', rebuilt: opened.rebuilt, ...(opened.movedTo ? { movedTo: opened.movedTo } : {}), runs: this.count() });
    await this.admin.connect();
    const { marks, stored } = await resumePositions(
      this.admin,
      { topic: statusTopic, offsets: () => this.writer.offsets(), reset: () => this.reset() },
      this.logger,
      'the run store is ahead of the status topic (was it recreated?): rebuilding the store',
    );
    for (const m of marks) {
      const at = stored.get(m.partition) ?? 0n;
      if (at < BigInt(m.low)) {
        this.logger.warn(
          { partition: m.partition, storedNext: String(at), firstOnTopic: m.low },
          'status updates were deleted by retention before the store applied them: runs they described may be missing or incomplete',
        );
      }
      this.taken.set(m.partition, at);
      this.applied.set(m.partition, at);
      this.highs.set(m.partition, m.high);
    }
    this.highAtStart = new Map(marks.map((m) => [m.partition, BigInt(m.high)]));
    this.deadLetters = new DeadLetterStore(this.db, config.topics.dlq, true);
    this.checkCaughtUp();
    const runs = await startMirrorConsumer(this.kafka, statusTopic, stored, {
      groupPrefix: 'action-router-store',
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 1024 * 1024,
      partitionsConsumedConcurrently: Math.max(1, marks.length),
      stopped: () => this.stopping,
      logger: this.logger,
      what: 'run store',
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.runsConsumer = runs.consumer;
    this.groups.push(runs.groupId);
    await this.startDeadLetters();
    this.fileTimer = setInterval(() => this.file.checkFile(), FILE_CHECK_MS);
    this.post({ type: 'started', positions: this.positions(), thread: threadInfo() });
    this.logger.info({ topic: statusTopic, runs: this.count(), rebuilt: opened.rebuilt }, 'run store writer applying the status topic');
  }

  private count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n;
  }

  /** Empties the store (the status topic was recreated): it is rebuilt from the topic. */
  private reset(): void {
    wipe(this.db);
    migrate(this.db, this.data.config.topics.status);
  }

  private async startDeadLetters(): Promise<void> {
    const store = this.deadLetters;
    const { stored } = await resumePositions(this.admin, store, this.logger, 'the dead-letter store is ahead of its topic (was it recreated?): reading it again');
    const next = new Map(stored);
    const letters = await startMirrorConsumer(this.kafka, store.topic, stored, {
      groupPrefix: 'action-router-dlq-view',
      maxWaitTimeInMs: 200,
      stopped: () => this.stopping,
      logger: this.logger,
      what: 'dead-letter store',
      eachBatch: async ({ batch, heartbeat }) => {
        const from = next.get(batch.partition) ?? 0n;
        const messages = batch.messages.filter((m) => BigInt(m.offset) >= from);
        if (messages.length === 0) return;
        const added = await this.file.retrying(() => store.apply(batch.partition, messages), [heartbeat]);
        if (added === undefined) return;
        const position = BigInt(messages[messages.length - 1]!.offset) + 1n;
        next.set(batch.partition, position);
        await commitApplied(this.dlqConsumer!, store.topic, new Map([[batch.partition, position]]));
        if (added.length > 0) this.post({ type: 'dead-letters', orgs: added });
      },
    });
    this.dlqConsumer = letters.consumer;
    this.groups.push(letters.groupId);
  }

  private async eachBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const partition = batch.partition;
    this.fetched += batch.messages.length;
    this.highs.set(partition, batch.highWatermark);
    const from = this.taken.get(partition) ?? 0n;
    const entries: WriterEntry[] = [];
    for (const m of batch.messages) {
      const offset = BigInt(m.offset);
      // Applied, or queued for the next transaction: not decoded again.
      if (offset < from) continue;
      entries.push(await this.decoder.decode(partition, offset, m));
    }
    if (entries.length === 0) return;
    this.taken.set(partition, entries[entries.length - 1]!.offset + 1n);
    this.pending.push(...entries);
    await new Promise<void>((resolve) => {
      this.waiters.push({ resolve, heartbeat });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.pending.length >= this.data.maxUpdates) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      void this.flush();
    } else if (!this.timer && !this.immediate && !this.flushing) {
      // 0: the batches of one fetch (handed over in the same turn) share a transaction.
      if (this.data.maxWaitMs === 0) {
        this.immediate = setImmediate(() => {
          this.immediate = null;
          void this.flush();
        });
      } else {
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.flush();
        }, this.data.maxWaitMs);
      }
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = this.flushAll().finally(() => {
      this.flushing = null;
      if (this.pending.length > 0) this.schedule();
    });
    return this.flushing;
  }

  private async flushAll(): Promise<void> {
    while (this.pending.length > 0) {
      const entries = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      const t0 = process.hrtime.bigint();
      const outcome = await this.file.retrying(() => this.writer.apply(entries), waiters.map((w) => w.heartbeat));
      if (outcome === undefined) return;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const counts: Partial<Record<ApplyResult, number>> = {};
      const marks: [string, ApplyResult, number, string][] = [];
      for (const r of outcome.results) {
        counts[r.result] = (counts[r.result] ?? 0) + 1;
        if (r.mark) marks.push([r.mark, r.result, r.partition, String(r.offset)]);
        if (r.result === 'invalid' && r.reason && !entries.find((e) => e.offset === r.offset && e.partition === r.partition)?.problem) {
          this.decoder.logSkipped(r.partition, r.offset, r.result, r.reason);
        }
      }
      for (const [p, next] of outcome.positions) this.applied.set(p, next);
      this.post({
        type: 'applied',
        runIds: outcome.runIds,
        orgIds: outcome.orgIds,
        marks,
        positions: this.positions(),
        counts,
        seconds,
      });
      this.checkCaughtUp();
      this.file.checkpoint();
      const consumer = this.runsConsumer;
      // commitApplied never rejects: a failed commit is retried by the next one.
      if (consumer) this.committing = this.committing.then(() => commitApplied(consumer, this.data.config.topics.status, outcome.positions));
      for (const w of waiters) w.resolve();
    }
  }

  private positions(): [number, string, string][] {
    return [...this.applied].map(([p, next]) => [p, String(next), this.highs.get(p) ?? '0']);
  }

  private checkCaughtUp(): void {
    if (this.caughtUp) return;
    for (const [p, high] of this.highAtStart) if ((this.applied.get(p) ?? 0n) < high) return;
    this.caughtUp = true;
    this.post({ type: 'caught-up' });
  }

  /** Messages fetched since the last call (re-reads included: they are skipped before decoding). */
  takeFetched(): number {
    const n = this.fetched;
    this.fetched = 0;
    return n;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.fileTimer) clearInterval(this.fileTimer);
    for (const c of [this.runsConsumer, this.dlqConsumer]) {
      await c?.stop().catch(() => undefined);
      await c?.disconnect().catch(() => undefined);
    }
    await this.flushing?.catch(() => undefined);
    await this.committing;
    await dropGroups(this.admin, this.groups, this.logger);
    await this.admin.disconnect().catch(() => undefined);
    try {
      this.db?.close();
    } catch {
      /* closing */
    }
  }
}

if (parentPort) {
  dropTimeoutNegativeWarnings();
  const port = parentPort;
  const post = (m: FromWriter) => port.postMessage(m);
  const data = workerData as WriterData;
  // Routing first: on a shared core the store yields, and catches up when routing idles.
  if (data.nice > 0) lowerThisThread(data.nice);
  const thread = new WriterThread(data, post);
  const fetchedTimer = setInterval(() => {
    const n = thread.takeFetched();
    if (n > 0) post({ type: 'fetched', count: n });
  }, 500);
  port.on('message', (m: ToWriter) => {
    if (m.type !== 'stop') return;
    clearInterval(fetchedTimer);
    void thread.stop().finally(() => {
      post({ type: 'stopped' });
      port.close();
    });
  });
  thread.start().catch((err: unknown) => {
    // The routing thread logs it and starts a new writer.
    throw err;
  });
}
