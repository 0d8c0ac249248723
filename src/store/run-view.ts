import type { Json } from '../model/json';
import type { LogRow, RunRow } from './run-store';


/** A stored JSON text as its value (a text that is not JSON as itself). */
export function jsonOf(text: string | null): Json {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export interface ViewOptions {
  /** `?version=v1`: `action` is the identifier string. */
  v1?: boolean;
  /** Top-level fields to leave out (`exclude`). */
  exclude?: readonly string[];
  actionTitle?: (identifier: string) => string | null;
}

/** The title of a run's entity, when its JSON has one. */
export function entityTitleOf(row: RunRow): string | null {
  const entity = jsonOf(row.entity);
  return entity && typeof entity === 'object' && !Array.isArray(entity) && typeof entity.title === 'string' ? entity.title : null;
}

/** A stored run as Port's API shows it (PORT-RUNS-API.md, "The Run object"). */
export function runView(row: RunRow, options: ViewOptions = {}): Record<string, Json> {
  const entityTitle = entityTitleOf(row);
  const action = row.action ?? '';
  const view: Record<string, Json> = {
    id: row.id,
    status: row.status,
    statusLabel: row.statusLabel,
    link: jsonOf(row.links) ?? [],
    summary: row.summary,
    externalRunId: row.externalRunId,
    action: options.v1 ? action : { identifier: action, title: options.actionTitle?.(action) ?? action, icon: null, deleted: false },
    properties: jsonOf(row.properties) ?? {},
    source: row.origin ?? 'API',
    requiredApproval: row.approvalType !== null,
    approval: row.approvalBy ? { userId: row.approvalBy, state: approvalStateOf(row), description: row.approvalDescription } : null,
    blueprint: row.blueprint ? { identifier: row.blueprint, title: row.blueprint } : null,
    entity: row.entityIdentifier ? { identifier: row.entityIdentifier, title: entityTitle ?? row.entityIdentifier } : null,
    response: jsonOf(row.response),
    createdBy: row.createdBy,
    updatedBy: row.updatedBy,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    endedAt: iso(row.endedAt),
    // Ours, beside Port's fields: where the run went.
    orgId: row.orgId,
    invocationType: row.invocationType,
    invocationMethod: jsonOf(row.invocation),
    repeats: row.repeats,
    resentFrom: row.resentFrom,
  };
  for (const key of options.exclude ?? []) if (key !== 'id') delete view[key];
  return view;
}

/** Port's approval states: the last decision on the run. */
function approvalStateOf(row: RunRow): string {
  if (row.approvalState === 'DECLINED') return 'DECLINED';
  if (row.approvalState === 'CANCELLED') return 'CANCELLED';
  return 'APPROVED';
}

export function logView(row: LogRow): Record<string, Json> {
  return { id: row.id, runId: row.runId, message: row.message, createdBy: row.createdBy, createdAt: new Date(row.createdAt).toISOString() };
}
