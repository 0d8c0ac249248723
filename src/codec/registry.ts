import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type avro from 'avsc';
import { ErrorCodes, RouterError, describeError } from '../errors';

/** The compatibility level registered with each subject the router owns. */
export const REGISTRY_COMPATIBILITY = 'BACKWARD';

/**
 * The part of a Confluent-compatible schema registry the router uses:
 * decoding framed Avro by schema id, and encoding under a registered schema.
 */
export interface RegistryCodec {
  decode(buffer: Buffer): Promise<unknown>;
  /** Registers `schema` under `subject` (once) and encodes `value` with it. */
  encode(subject: string, schema: avro.Schema, value: unknown): Promise<Buffer>;
}

/** True when `buffer` carries Confluent's wire framing: magic 0 and a schema id. */
export function isConfluentFramed(buffer: Buffer): boolean {
  return buffer.length >= 5 && buffer[0] === 0;
}

export function createRegistryCodec(url: string): RegistryCodec {
  const registry = new SchemaRegistry({ host: url });
  const ids = new Map<string, Promise<number>>();

  const idFor = (subject: string, schema: avro.Schema): Promise<number> => {
    let id = ids.get(subject);
    if (!id) {
      id = registry
        .register(
          { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
          // Explicit: some registries (Apicurio) answer GET /config with a
          // level of their own, which must match what we ask for.
          { subject, compatibility: REGISTRY_COMPATIBILITY as never },
        )
        .then((r) => r.id);
      // A failed registration is retried on the next call, not cached.
      id.catch(() => ids.delete(subject));
      ids.set(subject, id);
    }
    return id;
  };

  return {
    async decode(buffer) {
      try {
        return await registry.decode(buffer);
      } catch (err) {
        throw new RouterError(ErrorCodes.REGISTRY_UNAVAILABLE, `schema registry decode failed: ${describeError(err)}`, {
          retriable: isTransient(err),
          cause: err,
        });
      }
    },
    async encode(subject, schema, value) {
      try {
        return await registry.encode(await idFor(subject, schema), value);
      } catch (err) {
        throw new RouterError(ErrorCodes.REGISTRY_UNAVAILABLE, `schema registry encode failed: ${describeError(err)}`, {
          retriable: true,
          cause: err,
        });
      }
    },
  };
}

/**
 * A registry that is down or overloaded is worth waiting for; one that says
 * the schema id does not exist (404) or the bytes do not decode is not.
 */
function isTransient(err: unknown): boolean {
  const status = (err as { status?: number }).status;
  if (typeof status === 'number') return status === 408 || status === 429 || status >= 500;
  const name = (err as { name?: string }).name ?? '';
  const message = describeError(err);
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket hang up|timeout/i.test(message)) return true;
  return !/Confluent|Avro|Invalid|truncated/i.test(name + message);
}
