import { RunStatusUpdate } from '../model/status';
import { isJsonObject } from '../model/json';
import { statusUpdateSchema } from './avro';
import { RegistryCodec, isConfluentFramed } from './registry';

/**
 * Encodes status updates for the status topic: plain JSON without a
 * registry, Confluent-framed Avro (TopicNameStrategy subject) with one.
 */
export interface StatusCodec {
  encode(update: RunStatusUpdate): Promise<Buffer> | Buffer;
  decode(value: Buffer): Promise<RunStatusUpdate>;
}

export function createStatusCodec(topic: string, registry?: RegistryCodec): StatusCodec {
  const subject = `${topic}-value`;
  return {
    encode(update) {
      if (registry) return registry.encode(subject, statusUpdateSchema, update);
      return Buffer.from(JSON.stringify(update));
    },
    decode: (value) => decodeStatus(value, registry),
  };
}

/** Reads a status update in either encoding (used by `tail` and tests). */
export async function decodeStatus(value: Buffer, registry?: RegistryCodec): Promise<RunStatusUpdate> {
  if (isConfluentFramed(value)) {
    if (!registry) throw new Error('status update is Avro but no schema registry is configured');
    return { ...(await registry.decode(value) as object) } as RunStatusUpdate;
  }
  const parsed: unknown = JSON.parse(value.toString('utf8'));
  if (!isJsonObject(parsed)) throw new Error('status update is not a JSON object');
  return parsed as unknown as RunStatusUpdate;
}
