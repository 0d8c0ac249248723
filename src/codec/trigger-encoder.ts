import type { JsonObject } from '../model/json';
import { actionRunSchema } from './avro';
import { portMessageToRecord } from './port-message';
import type { RegistryCodec } from './registry';

/** Writes a Port run message the way TRIGGER_TOPIC takes it here. */
export type TriggerEncoder = (message: JsonObject) => Promise<Buffer | string>;

/**
 * JSON without a registry; with one, Confluent-framed Avro under the
 * trigger topic's subject (`<topic>-value`, TopicNameStrategy), the same
 * form a registry-mode producer writes.
 */
export function createTriggerEncoder(topic: string, registry?: RegistryCodec): TriggerEncoder {
  if (!registry) return async (message) => JSON.stringify(message);
  const subject = `${topic}-value`;
  return (message) => registry.encode(subject, actionRunSchema, portMessageToRecord(message));
}
