import { TOO_DEEP, jsonTooDeep } from '../model/json';
import type { RunStatusUpdate } from '../model/status';

/**
 * What the store accepts of a decoded status update. An update that fails
 * is skipped for good (counted `invalid`, logged once with its position):
 * it can never apply, so retrying it would only stall the partition.
 * The bounds are far above what the router and the API write, and below
 * what would bloat a row.
 */
export const UPDATE_LIMITS = {
  runId: 1024,
  shortText: 4096,
  summary: 64 * 1024,
  log: 256 * 1024,
  links: 100,
  largeText: 2 * 1024 * 1024,
} as const;

const STATUSES = new Set(['IN_PROGRESS', 'SUCCESS', 'FAILURE']);
const DETAILS = new Set(['WAITING_FOR_APPROVAL', 'DECLINED']);
const CALL_PHASES = new Set(['STARTED', 'ENDED']);
const SOURCES = new Set(['ROUTER', 'BACKEND']);
const EVENTS = new Set(['REQUESTED', 'APPROVED', 'DECLINED', 'CANCELLED', 'TIMED_OUT', 'RELEASED', 'NOTED']);
const APPROVAL_TYPES = new Set(['ANY', 'ALL', 'ADMIN']);

type Check = (value: unknown) => string | null;

const text =
  (max: number, nullable = true): Check =>
  (v) => {
    if (v === null || v === undefined) return nullable ? null : 'is missing';
    if (typeof v !== 'string') return `is a ${typeof v}, not a string`;
    return v.length > max ? `is ${v.length} characters, over ${max}` : null;
  };
/** A JSON text field (entity, inputs, a response): bounded in size and in nesting, as every JSON read. */
const jsonText =
  (max: number): Check =>
  (v) => {
    const problem = text(max)(v);
    if (problem || typeof v !== 'string') return problem;
    return jsonTooDeep(v) ? `is ${TOO_DEEP}` : null;
  };
const oneOf =
  (symbols: Set<string>, nullable = false): Check =>
  (v) => {
    if (v === null || v === undefined) return nullable ? null : 'is missing';
    return typeof v === 'string' && symbols.has(v) ? null : `is not one of ${[...symbols].join(', ')}`;
  };
const integer =
  (nullable = false): Check =>
  (v) => {
    if (v === null || v === undefined) return nullable ? null : 'is missing';
    return typeof v === 'number' && Number.isSafeInteger(v) ? null : 'is not an integer';
  };
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'is not a boolean');
const strings =
  (max: number, each: number): Check =>
  (v) => {
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) return 'is not an array';
    if (v.length > max) return `has ${v.length} entries, over ${max}`;
    for (const item of v) {
      const problem = text(each, false)(item);
      if (problem) return `has an entry that ${problem}`;
    }
    return null;
  };
type Fields = readonly (readonly [string, Check])[];

const record = (fields: Record<string, Check>): Check => {
  const list: Fields = Object.entries(fields);
  return (v) => {
    if (v === null || v === undefined) return null;
    if (typeof v !== 'object' || Array.isArray(v)) return 'is not a record';
    return firstProblem(v as Record<string, unknown>, list);
  };
};

function firstProblem(value: Record<string, unknown>, fields: Fields): string | null {
  for (const [name, check] of fields) {
    const problem = check(value[name]);
    if (problem) return `${name} ${problem}`;
  }
  return null;
}

const L = UPDATE_LIMITS;
const runIdText = text(L.runId, false);
const FIELDS: Fields = Object.entries({
  runId: (v: unknown) => (v === '' ? 'is empty' : runIdText(v)),
  orgId: text(L.shortText),
  action: text(L.shortText),
  status: oneOf(STATUSES),
  statusLabel: text(L.shortText),
  summary: text(L.summary),
  links: strings(L.links, L.shortText),
  externalRunId: text(L.shortText),
  log: text(L.log),
  invocationType: text(L.shortText),
  source: oneOf(SOURCES),
  at: integer(),
  actor: text(L.shortText),
  response: jsonText(L.largeText),
  statusDetail: oneOf(DETAILS, true),
  run: record({
    blueprint: text(L.shortText),
    entityIdentifier: text(L.shortText),
    entity: jsonText(L.largeText),
    properties: jsonText(L.largeText),
    userId: text(L.shortText),
    userEmail: text(L.shortText),
    origin: text(L.shortText),
    actionTrigger: text(L.shortText),
    invocation: jsonText(L.largeText),
    createdAt: integer(true),
    triggerPartition: integer(true),
    agentPayload: jsonText(L.largeText),
    repeats: text(L.shortText),
  }),
  claim: record({ by: text(L.shortText, false), until: integer(), acked: bool }),
  resentFrom: text(L.shortText),
  call: oneOf(CALL_PHASES, true),
  approval: record({
    event: oneOf(EVENTS),
    by: text(L.shortText),
    description: text(L.shortText),
    type: oneOf(APPROVAL_TYPES, true),
    approvers: strings(10_000, L.shortText),
    parked: text(L.largeText),
  }),
} satisfies Record<string, Check>);

/**
 * Says why `value` cannot be applied, or null when it can. Fields the
 * store does not read are not looked at (readers of later schemas keep
 * working); missing nullable fields read as null.
 */
export function updateProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a record';
  return firstProblem(value as Record<string, unknown>, FIELDS);
}

/** The update with absent nullable fields read as null (JSON writers may leave them out). */
export function normalized(value: Record<string, unknown>): RunStatusUpdate {
  const u = value as unknown as RunStatusUpdate;
  return {
    ...u,
    orgId: u.orgId ?? null,
    action: u.action ?? null,
    statusLabel: u.statusLabel ?? null,
    summary: u.summary ?? null,
    links: u.links ?? [],
    externalRunId: u.externalRunId ?? null,
    log: u.log ?? null,
    invocationType: u.invocationType ?? null,
    attempt: typeof u.attempt === 'number' ? u.attempt : 1,
    run: u.run ? { ...nullRun(), ...u.run } : null,
    claim: u.claim ?? null,
    resentFrom: u.resentFrom ?? null,
    approval: u.approval
      ? {
          event: u.approval.event,
          by: u.approval.by ?? null,
          description: u.approval.description ?? null,
          type: u.approval.type ?? null,
          approvers: u.approval.approvers ?? [],
          parked: u.approval.parked ?? null,
        }
      : null,
  };
}

function nullRun() {
  return {
    blueprint: null,
    entityIdentifier: null,
    entity: null,
    properties: null,
    userId: null,
    userEmail: null,
    origin: null,
    actionTrigger: null,
    invocation: null,
    createdAt: null,
    triggerPartition: null,
    agentPayload: null,
    repeats: null,
  };
}
