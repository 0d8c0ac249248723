import type { Lossless } from './lossless-json';
import { JsonObject } from './json';

/**
 * What a run id must look like wherever one is taken from outside a
 * validated event (an API path, a Kafka key): Port's `r_…` and the like,
 * with nothing that could play tricks in a path or a log.
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
/** RUN_ID_PATTERN in words, for error texts (which never echo the id itself). */
export const RUN_ID_RULE = 'a run id is 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit';

/** Invocation types the router knows; an invoker registry maps each to a backend. */
export const INVOCATION_TYPES = ['KAFKA', 'WEBHOOK', 'GITHUB', 'GITLAB'] as const;
export type InvocationType = (typeof INVOCATION_TYPES)[number];

export function isInvocationType(value: string): value is InvocationType {
  return (INVOCATION_TYPES as readonly string[]).includes(value);
}

/**
 * Port's invocationMethod: `type`, `agent`, and the backend's own fields
 * (url, method, org, repo, workflow, projectName...), kept as given.
 */
export interface InvocationMethod extends JsonObject {
  type: string;
  agent: boolean;
}

/**
 * A decoded, validated run. Produced by the codec, frozen, and never
 * changed afterwards: invokers read it, nothing writes it.
 */
export interface ActionRun {
  runId: string;
  orgId: string;
  action: string;
  actionTrigger: string | null;
  origin: string | null;
  triggeredAt: string;
  userId: string | null;
  user: JsonObject | null;
  entityIdentifier: string | null;
  blueprint: string | null;
  entity: JsonObject | null;
  invocationMethod: InvocationMethod;
  properties: JsonObject;
  censoredProperties: string[];
  lossless?: LosslessParts;
}

/**
 * Free-form values exactly as the producer wrote them (numbers as Python
 * writes them, keys in order), where JSON.parse would have changed them.
 * Present (even empty) when the run's messages must be written with
 * `pythonJson` rather than JSON.stringify.
 */
export type LosslessParts = Partial<Record<'properties' | 'entity' | 'user' | 'invocationMethod', Lossless>>;

export type FrozenRun = Readonly<ActionRun>;
