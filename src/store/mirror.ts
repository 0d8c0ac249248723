import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { describeError } from '../errors';
import type { Logger } from '../log';

/**
 * A topic's offsets. Right after another instance created the topic its
 * partitions may have no leader yet ("not the leader"): wait for them
 * rather than fail the start.
 */
export async function topicOffsets(admin: Admin, topic: string): ReturnType<Admin['fetchTopicOffsets']> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** A store that keeps a topic in SQLite, with the next offset per partition. */
export interface MirroredStore {
  readonly topic: string;
  offsets(): Map<number, bigint>;
  /** Forgets what it holds: it is read again from the topic. */
  reset(): void;
}

/**
 * Where a mirror resumes: the topic's offsets and the store's positions. A
 * stored position past the topic's end means the topic was deleted and
 * recreated; the store then describes what is gone and starts over.
 */
export async function resumePositions(
  admin: Admin,
  store: MirroredStore,
  logger: Logger,
  aheadMessage: string,
): Promise<{ marks: Awaited<ReturnType<Admin['fetchTopicOffsets']>>; stored: Map<number, bigint> }> {
  const marks = await topicOffsets(admin, store.topic);
  let stored = store.offsets();
  if (marks.some((m) => (stored.get(m.partition) ?? 0n) > BigInt(m.high))) {
    logger.warn({ topic: store.topic }, aheadMessage);
    store.reset();
    stored = store.offsets();
  }
  return { marks, stored };
}

export interface MirrorConsumerOptions {
  /** The group id's prefix; a random suffix makes the group this instance's own. */
  groupPrefix: string;
  maxWaitTimeInMs: number;
  maxBytesPerPartition?: number;
  /** Partitions whose batches are handed over at once (the writer joins them in one transaction). */
  partitionsConsumedConcurrently?: number;
  /** True once the owner stops: the consumer is then not restarted after a crash. */
  stopped: () => boolean;
  logger: Logger;
  /** Names the consumer in its crash log line. */
  what: string;
  eachBatch: (payload: EachBatchPayload) => Promise<void>;
}

/**
 * Reads every partition of `topic` from the stored positions, in a
 * consumer group of its own. The store's offsets are the position; the
 * owner also commits them to the group (`commitApplied`), so that a rejoin
 * or a restart after a crash (a broker outage) resumes where the store is
 * rather than at the start of the topic.
 */
export async function startMirrorConsumer(kafka: Kafka, topic: string, stored: Map<number, bigint>, o: MirrorConsumerOptions): Promise<MirrorConsumer> {
  const groupId = `${o.groupPrefix}-${randomBytes(6).toString('hex')}`;
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: o.maxWaitTimeInMs,
    ...(o.maxBytesPerPartition ? { maxBytesPerPartition: o.maxBytesPerPartition } : {}),
    allowAutoTopicCreation: false,
    retry: { restartOnFailure: async () => !o.stopped() },
  });
  consumer.on(consumer.events.CRASH, (e) => {
    if (!o.stopped()) o.logger.warn({ err: describeError(e.payload.error), restart: e.payload.restart }, `${o.what} consumer crashed`);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: true,
    partitionsConsumedConcurrently: o.partitionsConsumedConcurrently ?? 1,
    eachBatch: o.eachBatch,
  });
  for (const [partition, offset] of stored) if (offset > 0n) consumer.seek({ topic, partition, offset: String(offset) });
  return { consumer, groupId };
}

/** A mirror's consumer and its group, which is this instance's alone. */
export interface MirrorConsumer {
  consumer: Consumer;
  groupId: string;
}

/**
 * Leaves and deletes instance-own groups: the store's offsets are the
 * position, so nothing needs them after the process; left behind, one
 * group a restart would pile up on the cluster until offset retention.
 */
export async function dropGroups(admin: Admin, groups: string[], logger: Logger): Promise<void> {
  if (groups.length === 0) return;
  await admin.deleteGroups(groups).catch((err: unknown) => logger.debug({ err: describeError(err), groups }, 'could not delete the instance groups'));
}

/** Commits the store's positions to the mirror's own group (a failed commit only costs a re-read, skipped before decoding). */
export async function commitApplied(consumer: Consumer, topic: string, positions: Map<number, bigint>): Promise<void> {
  if (positions.size === 0) return;
  await consumer
    .commitOffsets([...positions].map(([partition, next]) => ({ topic, partition, offset: String(next) })))
    .catch(() => undefined);
}
