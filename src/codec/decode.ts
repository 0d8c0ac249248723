import { ErrorCode, ErrorCodes, RejectedEventError, RouterError } from '../errors';
import { ActionRun, FrozenRun, InvocationMethod, LosslessParts, RUN_ID_PATTERN, RUN_ID_RULE } from '../model/run';
import { JsonObject, TOO_DEEP, deepFreeze, isJsonObject, jsonTooDeep } from '../model/json';
import { actionRunType, avroProblems } from './avro';
import { Originals, PORT_PATHS, actionRunJsonToRecord, looksLikePortMessage, portMessageToRecord } from './port-message';
import { RegistryCodec, isConfluentFramed } from './registry';
import { JsonMap, Lossless, LoneSurrogateError, member, needsLossless, parseLossless, toPlain } from '../model/lossless-json';

export type Encoding = 'avro' | 'port-json' | 'action-run-json';

/** What can be read of an event even when it is invalid. */
export interface EventIdentity {
  runId: string | null;
  orgId: string | null;
  action: string | null;
}

export type DecodeResult =
  | { ok: true; run: FrozenRun; encoding: Encoding }
  | { ok: false; error: RejectedEventError; identity: EventIdentity; encoding: Encoding | null };

export interface DecodeOptions {
  registry?: RegistryCodec;
  /** The Kafka key: by convention the run id, named when the value cannot be read. */
  key?: Buffer | null;
}


/** The identity of an event refused for its text alone: JSON.parse still reads it. */
function readableIdentity(text: string, key: Buffer | null | undefined): EventIdentity {
  try {
    const v: unknown = JSON.parse(text);
    if (isJsonObject(v)) {
      const record = looksLikePortMessage(v) ? portMessageToRecord(v) : actionRunJsonToRecord(v);
      const id = { runId: nonEmptyString(record.runId), orgId: nonEmptyString(record.orgId), action: nonEmptyString(record.action) };
      if (id.runId && RUN_ID_PATTERN.test(id.runId)) return id;
    }
  } catch {
    // only the key is left
  }
  return keyIdentity(key);
}

/** The Kafka key as the run's identity, when it looks like a run id. */
export function keyIdentity(key: Buffer | null | undefined): EventIdentity {
  const text = key?.toString('utf8');
  return { runId: text && RUN_ID_PATTERN.test(text) ? text : null, orgId: null, action: null };
}

/**
 * Turns the bytes of one trigger event into a validated, frozen run, or into
 * a rejection with a stable code. Throws only when the outcome is not yet
 * known (a retriable registry failure): the caller retries, it must not
 * dead-letter the message for that.
 */
export async function decodeTrigger(value: Buffer | null, options: DecodeOptions = {}): Promise<DecodeResult> {
  const noIdentity: EventIdentity = { runId: null, orgId: null, action: null };
  if (!value || value.length === 0) {
    return reject(ErrorCodes.DECODE_FAILED, 'empty message value', noIdentity, null);
  }

  let record: Record<string, unknown>;
  let encoding: Encoding;
  let pathNames: Record<string, string> = {};
  const originals: Originals = {};
  let tree: Lossless | undefined;
  if (isConfluentFramed(value)) {
    encoding = 'avro';
    // Unreadable framed Avro: the key names the run, so it can end FAILURE.
    const byKey = keyIdentity(options.key);
    if (!options.registry) {
      return reject(ErrorCodes.REGISTRY_NOT_CONFIGURED, 'Confluent-framed Avro received but SCHEMA_REGISTRY_URL is not set', byKey, encoding);
    }
    let decoded: unknown;
    try {
      decoded = await options.registry.decode(value);
    } catch (err) {
      if (err instanceof RouterError && err.retriable) throw err;
      return reject(ErrorCodes.DECODE_FAILED, (err as Error).message, byKey, encoding);
    }
    if (!isJsonObject(decoded) && (typeof decoded !== 'object' || decoded === null)) {
      return reject(ErrorCodes.DECODE_FAILED, 'Avro payload is not a record', byKey, encoding);
    }
    record = { ...(decoded as Record<string, unknown>) };
  } else {
    let parsed: unknown;
    const text = value.toString('utf8');
    // Before anything walks it: the identity is still read (JSON.parse does not recurse).
    if (jsonTooDeep(text)) return reject(ErrorCodes.SCHEMA_INVALID, TOO_DEEP, readableIdentity(text, options.key), null);
    try {
      // JSON.parse unless it would change a value (big integers, float
      // forms, integer-like keys) or the text holds a lone surrogate.
      if (needsLossless(text)) {
        tree = parseLossless(text);
        parsed = toPlain(tree);
      } else parsed = JSON.parse(text);
    } catch (err) {
      if (err instanceof LoneSurrogateError) return reject(ErrorCodes.INVALID_UNICODE, err.message, readableIdentity(text, options.key), null);
      return reject(ErrorCodes.DECODE_FAILED, `not JSON or Confluent-framed Avro: ${(err as Error).message}`, noIdentity, null);
    }
    if (!isJsonObject(parsed)) {
      return reject(ErrorCodes.DECODE_FAILED, 'JSON value is not an object', noIdentity, null);
    }
    if (looksLikePortMessage(parsed)) {
      encoding = 'port-json';
      record = portMessageToRecord(parsed, originals);
      pathNames = PORT_PATHS;
    } else {
      encoding = 'action-run-json';
      record = actionRunJsonToRecord(parsed, originals);
    }
  }

  const identity: EventIdentity = {
    runId: nonEmptyString(record.runId),
    orgId: nonEmptyString(record.orgId),
    action: nonEmptyString(record.action),
  };
  const name = (field: string) => pathNames[field] ?? field;
  if (!identity.runId) return reject(ErrorCodes.MISSING_RUN_ID, `${name('runId')}: a non-empty run id is required`, identity, encoding);
  if (!RUN_ID_PATTERN.test(identity.runId)) {
    // Named by its org only: a status update under this id would make a run nobody can read or end.
    const n = [...identity.runId].length;
    return reject(ErrorCodes.INVALID_RUN_ID, `${name('runId')}: ${RUN_ID_RULE} (got ${n} character${n === 1 ? '' : 's'})`, { ...identity, runId: null }, encoding);
  }
  if (!identity.orgId) return reject(ErrorCodes.MISSING_ORG_ID, `${name('orgId')}: a non-empty org id is required`, identity, encoding);

  const problems = avroProblems(actionRunType, record);
  if (problems.length > 0) {
    const named = problems.map((p) => {
      const field = p.slice(0, p.indexOf(':'));
      return pathNames[field] ? name(field) + p.slice(field.length) : p;
    });
    return reject(ErrorCodes.SCHEMA_INVALID, `schema validation failed: ${named.join('; ')}`, identity, encoding);
  }

  const lossless: LosslessParts = {};
  if (tree !== undefined && encoding === 'port-json') {
    const payload = member(tree, 'payload');
    lossless.properties = member(payload, 'properties') as Lossless;
    lossless.entity = member(payload, 'entity') as Lossless;
    lossless.user = member(member(member(tree, 'trigger'), 'by'), 'user') as Lossless;
    lossless.invocationMethod = member(member(payload, 'action'), 'invocationMethod') as Lossless;
  } else if (tree !== undefined) {
    lossless.properties = member(tree, 'properties') as Lossless;
    lossless.entity = member(tree, 'entity') as Lossless;
    lossless.user = member(member(tree, 'triggeredBy'), 'user') as Lossless;
  }
  const parsed = parseFreeForm(record, name, originals, lossless);
  if (typeof parsed === 'string') {
    const code = parsed.startsWith(INVALID_UNICODE_PREFIX) ? ErrorCodes.INVALID_UNICODE : ErrorCodes.SCHEMA_INVALID;
    return reject(code, parsed.replace(INVALID_UNICODE_PREFIX, ''), identity, encoding);
  }
  return { ok: true, run: deepFreeze(parsed), encoding };
}

function reject(code: ErrorCode, message: string, identity: EventIdentity, encoding: Encoding | null): DecodeResult {
  return { ok: false, error: new RejectedEventError(code, message), identity, encoding };
}

function nonEmptyString(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

const INVALID_UNICODE_PREFIX = '\u0000unicode:';

/** Keeps only objects (a JSON text field's or the tree's); anything else was judged by the schema already. */
function objectPart(value: Lossless | undefined): Lossless | undefined {
  return value instanceof JsonMap ? value : undefined;
}

/**
 * Parses the JSON-text fields of a valid record; a string return is the
 * error. Lossless parts found on the way are kept in `lossless`; the run
 * carries them when any was needed.
 */
function parseFreeForm(record: Record<string, unknown>, name: (f: string) => string, originals: Originals, lossless: LosslessParts): ActionRun | string {
  const r = record as {
    runId: string; orgId: string; action: string; actionTrigger: string | null; origin: string | null;
    triggeredAt: string; triggeredBy: { userId: string | null; user: string | null };
    entityIdentifier: string | null; blueprint: string | null; entity: string | null;
    invocationMethod: { type: string; agent: boolean; settings: string };
    properties: string; censoredProperties: string[];
  };
  const objectField = (field: string, text: string | null, part: 'properties' | 'entity' | 'user' | 'invocationMethod'): JsonObject | null | string => {
    if (text === null) return null;
    if (jsonTooDeep(text)) return `${name(field)}: ${TOO_DEEP}`;
    try {
      let v: unknown;
      if (needsLossless(text)) {
        const t = parseLossless(text);
        lossless[part] = t;
        v = toPlain(t);
      } else v = JSON.parse(text);
      if (v === null) return null;
      if (isJsonObject(v)) return v;
    } catch (err) {
      if (err instanceof LoneSurrogateError) return `${INVALID_UNICODE_PREFIX}${name(field)}: ${err.message}`;
      // fall through to the error below
    }
    return `${name(field)}: expected a JSON object`;
  };
  const properties = originals.properties ?? objectField('properties', r.properties, 'properties');
  if (typeof properties === 'string') return properties;
  const settings = originals.settings ?? objectField('invocationMethod.settings', r.invocationMethod.settings, 'invocationMethod');
  if (typeof settings === 'string') return settings;
  const entity = originals.entity ?? objectField('entity', r.entity, 'entity');
  if (typeof entity === 'string') return entity;
  const user = originals.user ?? objectField('triggeredBy.user', r.triggeredBy.user, 'user');
  if (typeof user === 'string') return user;
  const kept: LosslessParts = {};
  for (const key of ['properties', 'entity', 'user', 'invocationMethod'] as const) {
    const part = objectPart(lossless[key]);
    if (part) kept[key] = part;
  }
  if (r.invocationMethod.type.trim() === '') return `${name('invocationMethod.type')}: must not be empty`;

  const invocationMethod: InvocationMethod = {
    ...(settings ?? {}),
    type: r.invocationMethod.type.toUpperCase(),
    agent: r.invocationMethod.agent,
  };
  return {
    runId: r.runId,
    orgId: r.orgId,
    action: r.action,
    actionTrigger: r.actionTrigger,
    origin: r.origin,
    triggeredAt: r.triggeredAt,
    userId: r.triggeredBy.userId,
    user,
    entityIdentifier: r.entityIdentifier,
    blueprint: r.blueprint,
    entity,
    invocationMethod,
    properties: properties ?? {},
    censoredProperties: [...r.censoredProperties],
    ...(Object.keys(kept).length > 0 ? { lossless: kept } : {}),
  };
}
