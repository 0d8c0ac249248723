import { ActionRun } from '../model/run';
import { JsonObject, isJsonObject } from '../model/json';
import { JsonLike, JsonMap, pythonJson } from '../model/lossless-json';

/**
 * Port's run message as Port publishes it to Kafka and as a backend receives
 * it (PORT-REFERENCE.md, "The run message").
 */
export interface PortRunMessage {
  [key: string]: JsonLike;
  action: string;
  resourceType: 'run';
  status: 'TRIGGERED';
  trigger: { [key: string]: JsonLike };
  context: JsonObject;
  payload: { [key: string]: JsonLike };
}

/**
 * The JSON text of a run message: JSON.stringify where it is exact, else
 * (lossless parts, catalog defaults) Python's form, so that the text is one
 * Port's agent re-serialises unchanged.
 */
export function portMessageJson(message: PortRunMessage, run: Readonly<ActionRun>): string {
  return run.lossless ? pythonJson(message) : JSON.stringify(message);
}

/** The invocation method as Port writes it: type (and agent) first, then the rest in the producer's order. */
function invocationMethodOf(run: Readonly<ActionRun>): JsonLike {
  const { type, agent, ...settings } = run.invocationMethod;
  const given = run.lossless?.invocationMethod;
  if (given instanceof JsonMap) {
    const out = new JsonMap();
    out.entries.set('type', type);
    if (agent) out.entries.set('agent', agent);
    for (const [k, v] of given.entries) if (k !== 'type' && k !== 'agent') out.entries.set(k, v);
    return out;
  }
  return agent ? { type, agent, ...settings } : { type, ...settings };
}

/** True when a parsed JSON object has the shape of Port's run message. */
export function looksLikePortMessage(value: JsonObject): boolean {
  return value.resourceType === 'run' || isJsonObject(value.context) || isJsonObject(value.payload);
}

function get(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (!isJsonObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** Free-form fields (JSON text in Avro) whose parsed object is already at hand. */
export type FreeFormField = 'properties' | 'entity' | 'user' | 'settings';
export type Originals = Partial<Record<FreeFormField, JsonObject>>;

/**
 * The Avro value of a free-form field. An object is kept aside in
 * `originals` and stands in the record as "{}": the schema only needs to
 * see a string there, and serialising it to parse it again right after
 * would be wasted work on the hot path. Non-objects are left for Avro and
 * the object check to reject.
 */
function freeForm(value: unknown, fallback: string | null, field: FreeFormField, originals: Originals): unknown {
  if (value === undefined) return fallback;
  if (value === null) return null;
  if (!isJsonObject(value)) return value;
  originals[field] = value;
  return '{}';
}

/** Port field paths, so a validation error names what the producer wrote. */
export const PORT_PATHS: Record<string, string> = {
  runId: 'context.runId',
  orgId: 'trigger.by.orgId',
  action: 'action',
  actionTrigger: 'payload.action.trigger',
  origin: 'trigger.origin',
  triggeredAt: 'trigger.at',
  'triggeredBy.userId': 'trigger.by.userId',
  'triggeredBy.user': 'trigger.by.user',
  entityIdentifier: 'context.entity',
  blueprint: 'context.blueprint',
  entity: 'payload.entity',
  'invocationMethod.type': 'payload.action.invocationMethod.type',
  'invocationMethod.agent': 'payload.action.invocationMethod.agent',
  'invocationMethod.settings': 'payload.action.invocationMethod',
  invocationMethod: 'payload.action.invocationMethod',
  properties: 'payload.properties',
  censoredProperties: 'payload.censoredProperties',
};

/**
 * Maps Port's run message onto the ActionRun record (its Avro form), without
 * judging it: validation happens once, on the record.
 */
export function portMessageToRecord(msg: JsonObject, originals: Originals = {}): Record<string, unknown> {
  const action = msg.action;
  const method = get(msg, 'payload', 'action', 'invocationMethod');
  let invocationMethod: unknown = method;
  if (isJsonObject(method)) {
    const { type, agent, ...settings } = method;
    invocationMethod = { type, agent: agent ?? false, settings: freeForm(settings, '{}', 'settings', originals) };
  }
  return {
    runId: get(msg, 'context', 'runId'),
    orgId: get(msg, 'trigger', 'by', 'orgId'),
    // Newer Port messages carry the action as an object with an identifier.
    action: isJsonObject(action) ? action.identifier : action,
    actionTrigger: get(msg, 'payload', 'action', 'trigger') ?? null,
    origin: get(msg, 'trigger', 'origin') ?? null,
    triggeredAt: get(msg, 'trigger', 'at'),
    triggeredBy: {
      userId: get(msg, 'trigger', 'by', 'userId') ?? null,
      user: freeForm(get(msg, 'trigger', 'by', 'user'), null, 'user', originals),
    },
    entityIdentifier: get(msg, 'context', 'entity') ?? null,
    blueprint: get(msg, 'context', 'blueprint') ?? null,
    entity: freeForm(get(msg, 'payload', 'entity'), null, 'entity', originals),
    invocationMethod,
    properties: freeForm(get(msg, 'payload', 'properties'), '{}', 'properties', originals),
    censoredProperties: get(msg, 'payload', 'censoredProperties') ?? [],
  };
}

/**
 * The router's own ActionRun JSON form. Free-form fields may be given as JSON
 * text (the Avro form) or, for convenience, as objects.
 */
export function actionRunJsonToRecord(value: JsonObject, originals: Originals = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...value };
  for (const key of ['entity', 'properties'] as const) {
    if (isJsonObject(value[key])) out[key] = freeForm(value[key], null, key, originals);
  }
  out.properties ??= '{}';
  out.censoredProperties ??= [];
  for (const key of ['actionTrigger', 'origin', 'entityIdentifier', 'blueprint', 'entity'] as const) {
    out[key] ??= null;
  }
  const by = value.triggeredBy;
  if (by === undefined) out.triggeredBy = { userId: null, user: null };
  else if (isJsonObject(by)) {
    out.triggeredBy = { userId: by.userId ?? null, user: freeForm(by.user, null, 'user', originals) };
  }
  const method = value.invocationMethod;
  if (isJsonObject(method)) {
    const { type, agent, settings, ...rest } = method;
    const merged = isJsonObject(settings) ? { ...settings, ...rest } : rest;
    out.invocationMethod = {
      type,
      agent: agent ?? false,
      settings: typeof settings === 'string' && Object.keys(rest).length === 0 ? settings : JSON.stringify(merged),
    };
  }
  return out;
}

/**
 * Port's run message for `run`, as written to per-org topics and webhook
 * bodies. Keys follow Port's order, which matters for signatures.
 */
export function toPortMessage(run: Readonly<ActionRun>): PortRunMessage {
  const lossless = run.lossless;
  const by: { [key: string]: JsonLike } = { orgId: run.orgId, userId: run.userId };
  if (run.user) by.user = lossless?.user ?? run.user;
  return {
    action: run.action,
    resourceType: 'run',
    status: 'TRIGGERED',
    trigger: { by, origin: run.origin, at: run.triggeredAt },
    context: { entity: run.entityIdentifier, blueprint: run.blueprint, runId: run.runId },
    payload: {
      entity: run.entity === null ? null : (lossless?.entity ?? run.entity),
      action: { invocationMethod: invocationMethodOf(run), trigger: run.actionTrigger },
      properties: lossless?.properties ?? run.properties,
      censoredProperties: run.censoredProperties,
    },
  };
}

/** The ActionRun record (Avro form) of a decoded run: the inverse of parsing. */
export function runToRecord(run: Readonly<ActionRun>): Record<string, unknown> {
  const { type, agent, ...settings } = run.invocationMethod;
  return {
    runId: run.runId,
    orgId: run.orgId,
    action: run.action,
    actionTrigger: run.actionTrigger,
    origin: run.origin,
    triggeredAt: run.triggeredAt,
    triggeredBy: { userId: run.userId, user: run.user ? JSON.stringify(run.user) : null },
    entityIdentifier: run.entityIdentifier,
    blueprint: run.blueprint,
    entity: run.entity ? JSON.stringify(run.entity) : null,
    invocationMethod: { type, agent, settings: JSON.stringify(settings) },
    properties: JSON.stringify(run.properties),
    censoredProperties: [...run.censoredProperties],
  };
}
