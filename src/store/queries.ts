import type Database from 'better-sqlite3';
import type { RunDetails, RunState } from './folded-run';
import { DETAIL_COLUMNS, STATE_COLUMNS } from './schema';

/**
 * The store's list queries, each bounded: pages by keyset (a cursor), an
 * `offset` only up to MAX_OFFSET, totals counted up to COUNT_CAP, free
 * text through the trigram index over the newest SEARCH_CAP matches. They
 * run in the query thread (query-pool.ts), never on the routing thread.
 */
export const LIMITS = {
  /** Port's `offset` is accepted up to this; deeper pages take the cursor. */
  maxOffset: 10_000,
  /** Totals above this are reported as this, with `capped`. */
  countCap: 10_000,
  /** Free-text search looks at this many of the newest matching runs. */
  searchCap: 10_000,
  /** Per-status counts of the dead letters cover the newest this many. */
  deadLetterCountCap: 10_000,
} as const;

/** One run as the store keeps it (column names in camelCase): its `runs` row joined with its details. */
export interface RunRow extends RunState, RunDetails {
  key: number;
}

/** A run with what it is: the row joined with its details. */
export const RUN_SELECT = `SELECT ${STATE_COLUMNS.replace(/(^|,\s*)(\w+)/g, '$1r.$2')}, ${DETAIL_COLUMNS.replace(/(^|,\s*)(\w+)/g, '$1d.$2')}
  FROM runs r LEFT JOIN run_details d ON d.key = r.key`;

/** Where a page ends: the next page starts after it. */
export interface Cursor {
  createdAt: number;
  key: number;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.createdAt}.${c.key}`).toString('base64url');
}

/** The cursor a client sent, or null when it is not one of ours. */
export function decodeCursor(text: string): Cursor | null {
  const m = /^(-?\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (!m) return null;
  const c = { createdAt: Number(m[1]), key: Number(m[2]) };
  return Number.isSafeInteger(c.createdAt) && Number.isSafeInteger(c.key) ? c : null;
}

export interface RunFilter {
  /** Only this org's runs; undefined = every org (an operator). */
  orgId?: string;
  entity?: string;
  blueprint?: string;
  active?: boolean;
  userEmail?: string;
  userId?: string;
  externalRunId?: string;
  action?: string;
  sources?: string[];
  statuses?: string[];
  invocationTypes?: string[];
  /** Free text over run id, entity and external id. */
  text?: string;
}

export interface RunPage {
  rows: RunRow[];
  /** The cursor of the next page, when there may be one. */
  next: string | null;
}

/** The trigram index matches three characters and more; shorter text must equal a field. */
const TRIGRAM = 3;

function whereOf(f: RunFilter, cursor?: Cursor): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const eq = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(`r.${column} = ?`);
    params.push(value);
  };
  const oneOf = (column: string, values: string[] | undefined) => {
    if (!values?.length) return;
    where.push(`r.${column} IN (${values.map(() => '?').join(', ')})`);
    params.push(...values);
  };
  eq('org_id', f.orgId);
  eq('entity_identifier', f.entity);
  eq('blueprint', f.blueprint);
  eq('user_email', f.userEmail);
  eq('user_id', f.userId);
  eq('external_run_id', f.externalRunId);
  eq('action', f.action);
  oneOf('origin', f.sources);
  oneOf('status', f.statuses);
  oneOf('invocation_type', f.invocationTypes);
  if (f.active) where.push('r.ended_at IS NULL');
  if (f.text) {
    if ([...f.text].length >= TRIGRAM) {
      where.push(`r.key IN (SELECT rowid FROM runs_search WHERE runs_search MATCH ? ORDER BY rowid DESC LIMIT ${LIMITS.searchCap})`);
      params.push(`"${f.text.replace(/"/g, '""')}"`);
    } else {
      where.push('(r.id = ? OR r.entity_identifier = ? OR r.external_run_id = ?)');
      params.push(f.text, f.text, f.text);
    }
  }
  if (cursor) {
    where.push('(r.created_at < ? OR (r.created_at = ? AND r.key < ?))');
    params.push(cursor.createdAt, cursor.createdAt, cursor.key);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}

/** Newest first, one page: after `cursor`, or `offset` rows in (at most LIMITS.maxOffset). */
export function listRuns(db: Database.Database, f: RunFilter, page: { limit: number; offset?: number; cursor?: Cursor }): RunPage {
  const { sql, params } = whereOf(f, page.cursor);
  const offset = Math.min(page.offset ?? 0, LIMITS.maxOffset);
  const rows = db
    .prepare<unknown[], RunRow>(`${RUN_SELECT} ${sql} ORDER BY r.created_at DESC, r.key DESC LIMIT ? OFFSET ?`)
    .all(...params, page.limit, offset);
  const last = rows[rows.length - 1];
  return { rows, next: rows.length === page.limit && last ? encodeCursor({ createdAt: last.createdAt, key: last.key }) : null };
}

/** How many runs match, counted up to LIMITS.countCap. */
export function countRuns(db: Database.Database, f: RunFilter): { total: number; capped: boolean } {
  const { sql, params } = whereOf(f);
  const n = (db.prepare(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM runs r ${sql} LIMIT ${LIMITS.countCap + 1})`).get(...params) as { n: number }).n;
  return { total: Math.min(n, LIMITS.countCap), capped: n > LIMITS.countCap };
}

export interface Overview {
  perMinute: number[];
  ended: Record<string, number>;
  inFlight: number;
  waiting: number;
  /** True when in-flight or waiting runs were more than LIMITS.countCap (they show as the cap). */
  capped: boolean;
}

/**
 * The console's overview of one org (or all): runs started per minute over
 * the last `minutes`, runs ended in that window by status, runs not ended,
 * and runs waiting for approval.
 */
export function overview(db: Database.Database, orgId: string | undefined, now: number, minutes: number): Overview {
  const since = now - minutes * 60_000;
  const org = orgId === undefined ? '' : ' AND org_id = @orgId';
  const params = { since, orgId, now };
  const perMinute = new Array<number>(minutes).fill(0);
  const started = db
    .prepare(`SELECT (@now - created_at) / 60000 AS ago, COUNT(*) AS n FROM runs WHERE created_at > @since${org} GROUP BY 1`)
    .all(params) as { ago: number; n: number }[];
  for (const { ago, n } of started) {
    const i = minutes - 1 - Math.floor(ago);
    if (i >= 0 && i < minutes) perMinute[i] = perMinute[i]! + n;
  }
  const ended: Record<string, number> = {};
  const byStatus = db.prepare(`SELECT status, COUNT(*) AS n FROM runs WHERE ended_at > @since${org} GROUP BY status`).all(params) as { status: string; n: number }[];
  for (const { status, n } of byStatus) ended[status] = n;
  const cap = LIMITS.countCap + 1;
  const inFlight = (db.prepare(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM runs WHERE ended_at IS NULL${org} LIMIT ${cap})`).get(params) as { n: number }).n;
  const waiting = (db.prepare(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM runs WHERE approval_state = 'WAITING'${org} LIMIT ${cap})`).get(params) as { n: number }).n;
  return {
    perMinute,
    ended,
    inFlight: Math.min(inFlight, LIMITS.countCap),
    waiting: Math.min(waiting, LIMITS.countCap),
    capped: inFlight > LIMITS.countCap || waiting > LIMITS.countCap,
  };
}
