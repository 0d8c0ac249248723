import type { KafkaMessage } from 'kafkajs';
import type { BatchProducer } from '../kafka/batch-producer';
import type { RouterError } from '../errors';

export interface SourcePosition {
  topic: string;
  partition: number;
}

/** The contract's dead-letter headers for one rejected message. */
export function deadLetterHeaders(error: RouterError, source: SourcePosition, offset: string, now = Date.now()): Record<string, string> {
  return {
    'x-dlq-reason': error.code,
    'x-dlq-error': error.message.slice(0, 2_000),
    'x-dlq-source-topic': source.topic,
    'x-dlq-source-partition': String(source.partition),
    'x-dlq-source-offset': offset,
    'x-dlq-at': new Date(now).toISOString(),
  };
}

/**
 * Writes a message that cannot be routed to the dead-letter topic with its
 * original key, value and headers unchanged, plus the reason headers.
 */
export class DeadLetterWriter {
  constructor(
    private readonly producer: BatchProducer,
    private readonly topic: string,
  ) {}

  async write(message: KafkaMessage, source: SourcePosition, error: RouterError): Promise<void> {
    await this.producer.send(this.topic, {
      key: message.key,
      value: message.value,
      headers: { ...(message.headers ?? {}), ...deadLetterHeaders(error, source, message.offset) },
    });
  }
}
