import type { JsonObject } from '../model/json';
import { actionRunSchema } from './avro';
import { decodeTrigger } from './decode';
import { runToRecord } from './port-message';
import type { RegistryCodec } from './registry';

/** Writes a Port run message the way TRIGGER_TOPIC takes it here. */
export type TriggerEncoder = (message: JsonObject) => Promise<Buffer | string>;

/**
 * JSON without a registry; with one, Confluent-framed Avro under the
 * trigger topic's subject (`<topic>-value`, TopicNameStrategy), the same
 * form a registry-mode producer writes. The message goes through the
 * router's own decoder first, so the record is exactly what the router
 * would have made of the JSON.
 */
export function createTriggerEncoder(topic: string, registry?: RegistryCodec): TriggerEncoder {
  if (!registry) return async (message) => JSON.stringify(message);
  const subject = `${topic}-value`;
  return async (message) => {
    const decoded = await decodeTrigger(Buffer.from(JSON.stringify(message)));
    if (!decoded.ok) throw decoded.error;
    return registry.encode(subject, actionRunSchema, runToRecord(decoded.run));
  };
}
