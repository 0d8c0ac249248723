import { ErrorCode, ErrorCodes, RejectedEventError, RouterError } from '../errors';
import { ActionRun, FrozenRun, InvocationMethod } from '../model/run';
import { JsonObject, deepFreeze, isJsonObject } from '../model/json';
import { actionRunType, avroProblems } from './avro';
import { Originals, PORT_PATHS, actionRunJsonToRecord, looksLikePortMessage, portMessageToRecord } from './port-message';
import { RegistryCodec, isConfluentFramed } from './registry';

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

/** What a key must look like to be taken for a run id. */
const RUN_ID_KEY = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function keyIdentity(key: Buffer | null | undefined): EventIdentity {
  const text = key?.toString('utf8');
  return { runId: text && RUN_ID_KEY.test(text) ? text : null, orgId: null, action: null };
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
    try {
      parsed = JSON.parse(value.toString('utf8'));
    } catch (err) {
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
  if (!identity.orgId) return reject(ErrorCodes.MISSING_ORG_ID, `${name('orgId')}: a non-empty org id is required`, identity, encoding);

  const problems = avroProblems(actionRunType, record);
  if (problems.length > 0) {
    const named = problems.map((p) => {
      const field = p.slice(0, p.indexOf(':'));
      return pathNames[field] ? name(field) + p.slice(field.length) : p;
    });
    return reject(ErrorCodes.SCHEMA_INVALID, `schema validation failed: ${named.join('; ')}`, identity, encoding);
  }

  const parsed = parseFreeForm(record, name, originals);
  if (typeof parsed === 'string') return reject(ErrorCodes.SCHEMA_INVALID, parsed, identity, encoding);
  return { ok: true, run: deepFreeze(parsed), encoding };
}

function reject(code: ErrorCode, message: string, identity: EventIdentity, encoding: Encoding | null): DecodeResult {
  return { ok: false, error: new RejectedEventError(code, message), identity, encoding };
}

function nonEmptyString(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

/** Parses the JSON-text fields of a valid record; a string return is the error. */
function parseFreeForm(record: Record<string, unknown>, name: (f: string) => string, originals: Originals): ActionRun | string {
  const r = record as {
    runId: string; orgId: string; action: string; actionTrigger: string | null; origin: string | null;
    triggeredAt: string; triggeredBy: { userId: string | null; user: string | null };
    entityIdentifier: string | null; blueprint: string | null; entity: string | null;
    invocationMethod: { type: string; agent: boolean; settings: string };
    properties: string; censoredProperties: string[];
  };
  const objectField = (field: string, text: string | null): JsonObject | null | string => {
    if (text === null) return null;
    try {
      const v: unknown = JSON.parse(text);
      if (v === null) return null;
      if (isJsonObject(v)) return v;
    } catch {
      // fall through to the error below
    }
    return `${name(field)}: expected a JSON object`;
  };
  const properties = originals.properties ?? objectField('properties', r.properties);
  if (typeof properties === 'string') return properties;
  const settings = originals.settings ?? objectField('invocationMethod.settings', r.invocationMethod.settings);
  if (typeof settings === 'string') return settings;
  const entity = originals.entity ?? objectField('entity', r.entity);
  if (typeof entity === 'string') return entity;
  const user = originals.user ?? objectField('triggeredBy.user', r.triggeredBy.user);
  if (typeof user === 'string') return user;
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
  };
}
