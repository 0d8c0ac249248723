import { entityTitleOf, jsonOf } from '../store/run-view';
import type { Json, JsonObject } from '../model/json';
import type { DeadLetterRow } from '../store/dead-letters';
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
  };
}

export function deadLetterSummary(d: DeadLetterRow, visibleRun: boolean): JsonObject {
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
export function deadLetterDetail(d: DeadLetterRow, visibleRun: boolean): JsonObject {
  const value = d.value ?? Buffer.alloc(0);
  const text = value.toString('utf8');
  return {
    ...deadLetterSummary(d, visibleRun),
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
