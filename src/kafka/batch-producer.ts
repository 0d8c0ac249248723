import { CompressionTypes, IHeaders, Producer } from 'kafkajs';
import { isRecordLevel } from './write-error';

export interface OutboundMessage {
  key: string | Buffer | null;
  value: Buffer | string | null;
  headers?: IHeaders;
}

export interface BatchProducerOptions {
  /** How long a message may wait for others to share its request. */
  lingerMs?: number;
  /** A batch is sent at once when it holds this many messages. */
  maxBatchMessages?: number;
}

/** Records larger than this are sent in a request of their own. */
export const ALONE_BYTES = 128 * 1024;

function sizeOf(m: OutboundMessage): number {
  let n = (m.key?.length ?? 0) + (m.value?.length ?? 0);
  for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + (typeof v === 'string' || Buffer.isBuffer(v) ? v.length : 0);
  return n;
}

interface Pending {
  topic: string;
  message: OutboundMessage;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Groups concurrent sends into one produce request per linger window.
 * kafkajs sends one request per `send()` call; with hundreds of runs in
 * flight that costs a round trip each. Each caller still learns about its
 * own message: the promise resolves once the broker acknowledged it (acks
 * from all in-sync replicas), or rejects with the request's error.
 */
export class BatchProducer {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Immediate | null = null;
  /** Produce requests sent and not yet answered. */
  private sending = 0;
  private readonly lingerMs: number;
  private readonly maxBatch: number;

  constructor(
    readonly producer: Producer,
    options: BatchProducerOptions = {},
  ) {
    this.lingerMs = options.lingerMs ?? 2;
    this.maxBatch = options.maxBatchMessages ?? 500;
  }

  /**
   * Queues `message`; resolves once the broker acknowledged it. An `urgent`
   * message (one a caller waits on before it goes on, as a call's STARTED
   * record) does not wait out the linger when no request is under way: what
   * is queued is sent once the current turn of the event loop ends, so the
   * runs that reached this point together still share one request.
   */
  send(topic: string, message: OutboundMessage, options: { urgent?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      // A large record travels alone: if the broker refuses it, no other
      // run's record shared its request (a split would write those twice).
      if (sizeOf(message) > ALONE_BYTES) return this.sendAll([{ topic, message, resolve, reject }]);
      this.queue.push({ topic, message, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      // Urgent and nothing under way: sent at the end of this turn. While a request is under way (a busy
      // router), urgent ones wait out the linger with the rest: fewer, fuller requests cost the broker less.
      else if (options.urgent && this.sending === 0) this.soon ??= setImmediate(() => this.flush());
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  /** Sends whatever is queued now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.soon) {
      clearImmediate(this.soon);
      this.soon = null;
    }
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.sendAll(batch);
  }

  /**
   * One produce request for `batch`. When the broker refuses it for what a
   * record is (invalid, a topic denied), the request is split and each
   * message sent on its own: one run's bad record never fails another run's
   * write. (The partitions the broker did accept are then written twice:
   * at-least-once, and rare, since large records never share a request.)
   */
  private sendAll(batch: Pending[]): void {
    const byTopic = new Map<string, OutboundMessage[]>();
    for (const p of batch) {
      let list = byTopic.get(p.topic);
      if (!list) byTopic.set(p.topic, (list = []));
      list.push(p.message);
    }
    this.sending++;
    this.producer
      .sendBatch({
        acks: -1,
        compression: CompressionTypes.None,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      })
      .finally(() => this.sending--)
      .then(
        () => batch.forEach((p) => p.resolve()),
        (err: unknown) => {
          if (batch.length > 1 && isRecordLevel(err)) batch.forEach((p) => this.sendAll([p]));
          else batch.forEach((p) => p.reject(err));
        },
      );
  }
}
