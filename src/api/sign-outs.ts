import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { describeError } from '../errors';
import type { Logger } from '../log';
import { dropGroups, topicOffsets } from '../store/mirror';

/** How long a new instance waits to have read every sign-out before it answers for a session (then 503). */
export const SIGN_OUTS_LOAD_MS = 10_000;
/** Expired sign-outs are forgotten this often. */
const PRUNE_MS = 60_000;

export interface SignOutsDeps {
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  /** CONSOLE_SIGN_OUT_TOPIC */
  topic: string;
  /** Create the topic when it is missing (TOPICS_AUTO_CREATE). */
  autoCreate: boolean;
  /** CONSOLE_SESSION_SECONDS: no session outlives it, nor need its sign-out. */
  sessionSeconds: number;
  logger: Logger;
}

/**
 * Signed-out console sessions, shared by every instance through a topic of
 * their own: a sign-out is one record (the session's id and expiry), every
 * instance reads the topic from its start (a consumer group of its own)
 * and refuses those sessions until they would have expired anyway. The
 * instance that signs out refuses the session at once; the others within
 * their consumer's delay. A new instance answers for sessions only once it
 * has read what the topic held when it started. Emits `ended` for each
 * session newly signed out (the live feed closes its streams).
 */
export class SignOuts extends EventEmitter {
  /** This instance's own group (it always reads the topic from the start). */
  private readonly groupId = `action-router-sign-outs-${randomBytes(6).toString('hex')}`;
  private readonly ended = new Map<string, number>();
  private consumer: Consumer | null = null;
  private loaded = false;
  private markLoaded: () => void = () => undefined;
  private readonly whenLoaded = new Promise<void>((r) => (this.markLoaded = r));
  private pruner: NodeJS.Timeout | null = null;
  private stopping = false;

  constructor(private readonly deps: SignOutsDeps) {
    super();
  }

  async start(): Promise<void> {
    const { admin, topic, kafka, logger } = this.deps;
    await this.ensureTopic();
    // Per partition: where reading stands (from the first record kept) and the end it must reach.
    const marks = await topicOffsets(admin, topic);
    const read = new Map(marks.map((m) => [m.partition, BigInt(m.low)]));
    const check = () => {
      if (this.loaded || marks.some((m) => read.get(m.partition)! < BigInt(m.high))) return;
      this.loaded = true;
      this.markLoaded();
    };
    check();
    const consumer = kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false, retry: { restartOnFailure: async () => !this.stopping } });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!this.stopping) logger.warn({ err: describeError(e.payload.error), restart: e.payload.restart }, 'sign-out consumer crashed');
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        this.take(message.value);
        read.set(partition, BigInt(message.offset) + 1n);
        check();
      },
    });
    this.consumer = consumer;
    this.pruner = setInterval(() => this.prune(), PRUNE_MS).unref();
  }

  private async ensureTopic(): Promise<void> {
    const { admin, topic, autoCreate, sessionSeconds, logger } = this.deps;
    if ((await admin.listTopics()).includes(topic)) return;
    if (!autoCreate) throw new Error(`the sign-out topic ${topic} (CONSOLE_SIGN_OUT_TOPIC) does not exist and TOPICS_AUTO_CREATE is false`);
    // One partition: a handful of records an hour; kept as long as a session lives, and an hour more.
    const retentionMs = String((sessionSeconds + 3600) * 1000);
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: retentionMs }] }], waitForLeaders: true }).catch((err: unknown) => {
      // Another instance created it first.
      if (!/already exists/i.test(describeError(err))) throw err;
      return false;
    });
    if (created) logger.info({ topic, retentionMs }, 'created the sign-out topic');
  }

  private take(value: Buffer | null): void {
    if (!value) return;
    try {
      const { sid, exp } = JSON.parse(value.toString('utf8')) as { sid?: unknown; exp?: unknown };
      if (typeof sid === 'string' && typeof exp === 'number' && exp > Date.now()) this.add(sid, exp);
    } catch {
      // Not ours: nothing to end.
    }
  }

  private add(sid: string, exp: number): void {
    if (this.ended.has(sid)) return;
    this.ended.set(sid, exp);
    this.emit('ended', sid);
  }

  /** Whether session `sid` is signed out, as far as this instance has read (see isEnded). */
  has(sid: string): boolean {
    return this.ended.has(sid);
  }

  private prune(): void {
    const now = Date.now();
    for (const [sid, exp] of this.ended) if (exp <= now) this.ended.delete(sid);
  }

  /** Whether session `sid` was signed out; waits (bounded) until this instance has read every earlier sign-out. */
  async isEnded(sid: string): Promise<boolean> {
    if (!this.loaded) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), SIGN_OUTS_LOAD_MS)));
      const outcome = await Promise.race([this.whenLoaded, late]);
      clearTimeout(timer);
      if (outcome === 'late') throw new Error('the sign-outs are not read yet');
    }
    return this.ended.has(sid);
  }

  /** Ends session `sid` (valid until `exp`, ms) here at once and, once the broker acknowledges, on every instance. */
  async end(sid: string, exp: number): Promise<void> {
    this.add(sid, exp);
    await this.deps.producer.send({ topic: this.deps.topic, acks: -1, messages: [{ key: sid, value: JSON.stringify({ sid, exp }) }] });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.pruner) clearInterval(this.pruner);
    await this.consumer?.disconnect().catch(() => undefined);
    // The group is this instance's alone (it reads from the start each time): nothing needs it after.
    if (this.consumer) await dropGroups(this.deps.admin, [this.groupId], this.deps.logger);
  }
}
