import type { KafkaMessage } from 'kafkajs';
import type { Logger } from '../../log';

/** Where a message was read from. */
export interface SourcePosition {
  topic: string;
  partition: number;
}

/** What every stage gets with the message it works on. */
export interface MessageContext {
  /** The message as consumed (a release's stages see the parked event instead). */
  readonly received: KafkaMessage;
  readonly source: SourcePosition;
  /**
   * The partition's own signal: aborted when the partition is revoked and
   * its grace is over, or at shutdown. Work it stops is redelivered.
   */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export type { EventIdentity } from '../../codec/decode';
