import { entityTitleOf, jsonOf } from '../store/run-view';
import { CENSORED } from '../status/run-info';
import { ActionDefinition, UserInput, operationOf, userInputsOf } from '../catalog/definition';
import type { Json, JsonObject } from '../model/json';
import { DeadLetterRow, cutOnTopic, storedHeader } from '../store/dead-letters';
import { RESENT_FROM_HEADER } from '../api/resend';
import type { LogRow, RunRow, UpdateRow } from '../store/run-store';

/** One run as a row of the console's list (and of the live feed). */
export function runSummary(row: RunRow): JsonObject {
  return {
    id: row.id,
    status: row.status,
    statusLabel: row.statusLabel,
    summary: row.summary,
    action: row.action,
    orgId: row.orgId,
    invocationType: row.invocationType,
    entity: row.entityIdentifier,
    entityTitle: entityTitleOf(row),
    blueprint: row.blueprint,
    externalRunId: row.externalRunId,
    links: (jsonOf(row.links) as Json[] | null) ?? [],
    createdBy: row.createdBy,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    endedAt: row.endedAt,
  };
}

/** Who wrote an update, as people read it. */
function who(u: UpdateRow): string {
  if (u.source === 'ROUTER') return 'router';
  if (u.source === 'AGENT') return u.actor ? `agent ${u.actor}` : 'agent';
  return u.actor ? `backend ${u.actor}` : 'backend';
}

export function updateView(u: UpdateRow & { seq: number }): JsonObject {
  return {
    seq: u.seq,
    at: u.at,
    status: u.status,
    source: u.source,
    who: who(u),
    applied: u.applied === 1,
    statusLabel: u.statusLabel,
    summary: u.summary,
    log: u.log,
  };
}

export function consoleLogView(l: LogRow & { seq: number }): JsonObject {
  return { seq: l.seq, at: l.createdAt, message: l.message, createdBy: l.createdBy };
}

/** The run page: the row, how it was invoked, what it was given and what it answered. */
export function runDetail(row: RunRow): JsonObject {
  return {
    ...runSummary(row),
    origin: row.origin,
    actionTrigger: row.actionTrigger,
    userEmail: row.userEmail,
    userId: row.userId,
    updatedBy: row.updatedBy,
    properties: jsonOf(row.properties),
    entityJson: jsonOf(row.entity),
    invocation: jsonOf(row.invocation),
    response: jsonOf(row.response),
    triggerPartition: row.triggerPartition,
    claim: row.claimBy ? { by: row.claimBy, until: row.claimUntil, acked: row.claimAcked === 1 } : null,
    repeats: row.repeats,
    resentFrom: row.resentFrom,
    censored: censoredInputs(row),
  };
}

/** The inputs a run page shows masked: "Run again" asks for them anew. */
function censoredInputs(row: RunRow): string[] {
  const properties = jsonOf(row.properties);
  if (!properties || typeof properties !== 'object' || Array.isArray(properties)) return [];
  return Object.entries(properties)
    .filter(([, v]) => v === CENSORED)
    .map(([k]) => k);
}

/** What the console says of a letter beyond the row: whether its run shows, what its re-sending did, whether this viewer may re-send it. */
export interface LetterFacts {
  visibleRun: boolean;
  resent: { runStatus: string; statusLabel: string | null; at: number } | null;
  canResend: boolean;
}

export function deadLetterSummary(d: DeadLetterRow, facts: LetterFacts): JsonObject {
  const visibleRun = facts.visibleRun;
  return {
    seq: d.seq,
    partition: d.partition,
    offset: d.offset,
    reason: d.reason,
    error: d.error,
    sourceTopic: d.sourceTopic,
    sourcePartition: d.sourcePartition,
    sourceOffset: d.sourceOffset,
    runId: d.runId,
    runKnown: visibleRun,
    orgId: d.orgId,
    at: d.at,
    size: d.size,
    trimmed: d.trimmed === 1,
    resent: facts.resent,
    // A re-sent event dead-lettered again: the letter it came from.
    resentFrom: storedHeader(d, RESENT_FROM_HEADER),
    canResend: facts.canResend && !cutOnTopic(d),
  };
}

/** Hex dump lines: offset, 16 bytes in hex, and their printable ASCII. */
export function hexDump(bytes: Buffer, max = 16 * 1024): string {
  const lines: string[] = [];
  const shown = bytes.subarray(0, max);
  for (let i = 0; i < shown.length; i += 16) {
    const chunk = shown.subarray(i, i + 16);
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

/** A dead letter whole: headers, key, and its value as text and as hex. */
export function deadLetterDetail(d: DeadLetterRow, facts: LetterFacts): JsonObject {
  const value = d.value ?? Buffer.alloc(0);
  const text = value.toString('utf8');
  return {
    ...deadLetterSummary(d, facts),
    headers: jsonOf(d.headers),
    // 'masked': censored inputs and invocation headers and body masked as on a run page; 'withheld': not kept (the topic has it).
    copy: (['as-is', 'masked', 'withheld'] as const)[d.copy] ?? 'withheld',
    key: d.key ? d.key.toString('utf8') : null,
    // Text only when the bytes are UTF-8; Avro and other binary values are shown as hex.
    text: Buffer.from(text, 'utf8').equals(value) ? text : null,
    hex: hexDump(value),
    keptBytes: value.length,
  };
}

/** An action as the self-service page lists it. */
export function actionCard(def: ActionDefinition): JsonObject {
  return {
    identifier: def.identifier,
    title: def.title ?? def.identifier,
    description: def.description ?? null,
    icon: def.icon ?? null,
    operation: operationOf(def) ?? 'CREATE',
    invocationType: String(def.invocationMethod.type).toUpperCase(),
    requiresApproval: Boolean(def.requiredApproval),
  };
}

/** What the page needs of one input to build its field and check it before sending. */
function inputView(name: string, input: UserInput, required: boolean): JsonObject {
  const out: JsonObject = { name, type: input.type, title: input.title ?? name, required, secret: input.encryption !== undefined };
  const copy = ['description', 'default', 'enum', 'format', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'pattern'] as const;
  for (const key of copy) if (input[key] !== undefined) out[key] = input[key] as Json;
  if (input.items) out.items = { type: input.items.type ?? 'string', ...(input.items.enum ? { enum: input.items.enum as Json[] } : {}) };
  // A secret's default would be shown in the page: it is left out.
  if (out.secret) delete out.default;
  return out;
}

/** An action's form: its card, whether it takes an entity, and its inputs in Port's `order` (the rest after, as written). */
export function actionForm(def: ActionDefinition): JsonObject {
  const spec = userInputsOf(def);
  const names = Object.keys(spec.properties);
  const ordered = [...(spec.order ?? []).filter((n) => names.includes(n)), ...names.filter((n) => !(spec.order ?? []).includes(n))];
  const operation = operationOf(def) ?? 'CREATE';
  return {
    ...actionCard(def),
    takesEntity: operation === 'DAY-2' || operation === 'DELETE',
    blueprint: typeof def.blueprint === 'string' ? def.blueprint : null,
    inputs: ordered.map((name) => inputView(name, spec.properties[name]!, spec.required.includes(name))),
  };
}
