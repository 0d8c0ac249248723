import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeLater, tempDir } from './cleanup';
import { Admin, Kafka, KafkaMessage, logLevel, Partitioners, Producer } from 'kafkajs';
import { App, AppOptions } from '../../src/app';
import { Config, loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/log';

/** The broker `npm test` started (scripts/with-kafka.mjs sets KAFKA_BROKERS). */
export function brokers(): string {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: run the tests with `npm test`, which starts a local broker');
  return b;
}

export function kafkaClient(): Kafka {
  return new Kafka({ brokers: brokers().split(','), clientId: 'test', logLevel: logLevel.NOTHING });
}

export function uid(): string {
  return randomBytes(5).toString('hex');
}

export interface TestTopics {
  trigger: string;
  status: string;
  dlq: string;
  orgTemplate: string;
  group: string;
}

/** The topics made by this test file, deleted after it (test/helpers/setup.ts). */
const made: TestTopics[] = [];

/** Fresh topic and group names for one test: tests never share state. */
export function testTopics(): TestTopics {
  const id = uid();
  const topics = {
    trigger: `t-${id}.triggers`,
    status: `t-${id}.status`,
    dlq: `t-${id}.dlq`,
    orgTemplate: `t-${id}.{orgId}.runs`,
    group: `g-${id}`,
  };
  made.push(topics);
  return topics;
}

/** Deletes the topics and groups of every testTopics() of this test file, in one request each. */
export async function deleteTestTopics(): Promise<void> {
  const sets = made.splice(0);
  if (sets.length === 0) return;
  const k = new TestKafka();
  try {
    await k.deleteTopics(...sets);
  } catch {
    // The broker of an outage test may be gone: nothing to delete there.
  } finally {
    await k.close().catch(() => undefined);
  }
}

/** The environment naming one test's topics and group, for routers spawned as processes. */
export function topicEnv(topics: TestTopics): Record<string, string> {
  return {
    TRIGGER_TOPIC: topics.trigger,
    STATUS_TOPIC: topics.status,
    DLQ_TOPIC: topics.dlq,
    ORG_TOPIC_TEMPLATE: topics.orgTemplate,
    ROUTER_GROUP_ID: topics.group,
  };
}

/** A run store file for one test, removed (with its WAL) after the test file. */
function runsDbPath(topics: TestTopics): string {
  const path = join(tmpdir(), `action-router-test-${topics.group}-${uid()}.db`);
  removeLater(path, `${path}-wal`, `${path}-shm`);
  return path;
}

/** A Config as the environment would give it, for one test's topics. */
export function testConfig(topics: TestTopics, env: Record<string, string> = {}): Config {
  return loadConfig({
    KAFKA_BROKERS: brokers(),
    TRIGGER_TOPIC: topics.trigger,
    STATUS_TOPIC: topics.status,
    DLQ_TOPIC: topics.dlq,
    ORG_TOPIC_TEMPLATE: topics.orgTemplate,
    ROUTER_GROUP_ID: topics.group,
    TOPICS_PARTITIONS: '3',
    ORG_TOPIC_PARTITIONS: '2',
    LOG_LEVEL: 'silent',
    HTTP_PORT: '0',
    ROUTER_COMMIT_INTERVAL_MS: '100',
    ROUTER_SHUTDOWN_GRACE_MS: '5000',
    RUNS_DB_PATH: runsDbPath(topics),
    // An agent's call ledger is kept here: a test's own, never another run's of the same org.
    DATA_DIR: tempDir('action-router-data-'),
    ...env,
  });
}

export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const app = new App(config, process.env.TEST_LOG ? (await import('../../src/log')).createLogger('debug') : silentLogger(), options);
  await app.start();
  return app;
}

export class TestKafka {
  readonly kafka = kafkaClient();
  private producer: Producer | null = null;
  private admin: Admin | null = null;
  private readonly consumers: { disconnect(): Promise<void> }[] = [];
  /** The groups of this helper's own readers, deleted at close(). */
  private readonly groups: string[] = [];

  async produce(topic: string, messages: { key?: string | null; value: string | Buffer | null; headers?: Record<string, string>; partition?: number }[]): Promise<void> {
    if (!this.producer) {
      this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
      await this.producer.connect();
    }
    await this.producer.send({ topic, messages: messages.map((m) => ({ key: m.key ?? null, value: m.value, headers: m.headers, partition: m.partition })) });
  }

  private async adminClient(): Promise<Admin> {
    if (!this.admin) {
      this.admin = this.kafka.admin();
      await this.admin.connect();
    }
    return this.admin;
  }

  async createTopic(topic: string, partitions = 3, config: Record<string, string> = {}): Promise<void> {
    const configEntries = Object.entries(config).map(([name, value]) => ({ name, value }));
    await (await this.adminClient()).createTopics({ topics: [{ topic, numPartitions: partitions, configEntries }], waitForLeaders: true });
  }

  /** How many records `topic` holds (0 when it does not exist). */
  async messageCount(topic: string): Promise<number> {
    const admin = await this.adminClient();
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, o) => n + Number(BigInt(o.high) - BigInt(o.low)), 0);
  }

  /** Deletes tests' topics (their org topics and sign-out topic too) and groups. */
  async deleteTopics(...sets: TestTopics[]): Promise<void> {
    const admin = await this.adminClient();
    const mine = (t: string) =>
      sets.some((topics) => {
        const [orgPrefix, orgSuffix] = topics.orgTemplate.split('{orgId}') as [string, string];
        return t === topics.trigger || t === topics.dlq || t.startsWith(topics.status) || (t.startsWith(orgPrefix) && t.endsWith(orgSuffix));
      });
    const topics = (await admin.listTopics()).filter(mine);
    if (topics.length) await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
    await admin.deleteGroups(sets.map((t) => t.group)).catch(() => undefined);
  }

  /** Waits for a topic the router creates on its own (org topics). */
  async waitForTopic(topic: string, timeoutMs: number): Promise<void> {
    const admin = await this.adminClient();
    await eventually(async () => (await admin.listTopics()).includes(topic), `topic ${topic} to exist`, timeoutMs);
  }

  /**
   * Reads `topic` from the beginning until `until` says enough (or the
   * timeout passes) and returns what was read.
   */
  async collect(topic: string, until: (messages: KafkaMessage[]) => boolean, timeoutMs = 30_000): Promise<KafkaMessage[]> {
    const groupId = `collect-${uid()}`;
    this.groups.push(groupId);
    const consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    this.consumers.push(consumer);
    const messages: KafkaMessage[] = [];
    await this.waitForTopic(topic, timeoutMs);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        messages.push(message);
        if (until(messages)) done();
      },
    });
    const timer = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([finished, timer]);
    await consumer.disconnect();
    return messages;
  }

  /** Consumes `topic` from the beginning in the background until close(). */
  async follow(topic: string, onMessage: (m: KafkaMessage) => void): Promise<void> {
    await this.waitForTopic(topic, 30_000);
    const groupId = `follow-${uid()}`;
    this.groups.push(groupId);
    const consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    this.consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => onMessage(message) });
  }

  /** Whether `groupId` has committed everything on `topic` (each message's outcome acknowledged). */
  async committedAll(groupId: string, topic: string): Promise<boolean> {
    const admin = await this.adminClient();
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return ends.every((e) => {
      const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? '-1';
      return e.high === '0' || BigInt(c) >= BigInt(e.high);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.disconnect().catch(() => undefined)));
    if (this.groups.length) await (await this.adminClient()).deleteGroups(this.groups.splice(0)).catch(() => undefined);
    await this.producer?.disconnect();
    await this.admin?.disconnect();
  }
}

export function json<T = Record<string, unknown>>(m: KafkaMessage): T {
  return JSON.parse(m.value!.toString('utf8')) as T;
}

/** Waits until `check` is true, polling; fails with `what` after the timeout. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
