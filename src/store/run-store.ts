import type Database from 'better-sqlite3';
import type { CallRecord } from '../model/status';
import type { JsonObject } from '../model/json';
import type { FrozenRun, InvocationMethod } from '../model/run';
import { parsedJson } from '../model/json';
import type { Decision } from './folded-run';
import { RUN_SELECT, RunRow } from './queries';
import { TimelineFields, openReadOnly } from './schema';

export type { TimelineFields } from './schema';

export type { RunRow } from './queries';
export { logIdAt } from './run-writer';
export type { ApplyResult } from './run-writer';

export interface LogRow {
  id: string;
  runId: string;
  message: string;
  createdBy: string | null;
  createdAt: number;
}

/** One approver's decision on a run. */
export type ApprovalRow = Decision;

/** A timeline row as read back (offset as text, applied as 0/1). */
export interface UpdateRow extends TimelineFields {
  offset: string;
  applied: number;
}

const LOG_COLUMNS = 'l.seq, l.id, r.id AS runId, l.message, l.created_by AS createdBy, l.created_at AS createdAt';
const UPDATE_COLUMNS = 'u.seq, u.partition, u.offset, u.applied, u.status, u.source, u.actor, u.status_label AS statusLabel, u.summary, u.log, u.at';

function statements(db: Database.Database) {
  return {
    get: db.prepare<[string], RunRow>(`${RUN_SELECT} WHERE r.id = ?`),
    approvals: db.prepare<[string], ApprovalRow>(
      'SELECT a.client_id AS clientId, a.decision, a.description, a.at FROM run_approvals a JOIN runs r ON r.key = a.run_key WHERE r.id = ? ORDER BY a.at',
    ),
    logs: db.prepare<[string, number, number], LogRow & { seq: number }>(
      `SELECT ${LOG_COLUMNS} FROM run_logs l JOIN runs r ON r.key = l.run_key WHERE r.id = ? ORDER BY l.seq LIMIT ? OFFSET ?`,
    ),
    log: db.prepare<[string], LogRow & { seq: number }>(`SELECT ${LOG_COLUMNS} FROM run_logs l JOIN runs r ON r.key = l.run_key WHERE l.id = ?`),
    logsAfter: db.prepare<[string, number, number], LogRow & { seq: number }>(
      `SELECT ${LOG_COLUMNS} FROM run_logs l JOIN runs r ON r.key = l.run_key WHERE r.id = ? AND l.seq > ? ORDER BY l.seq LIMIT ?`,
    ),
    lastLogs: db.prepare<[string, number], LogRow & { seq: number }>(
      `SELECT ${LOG_COLUMNS} FROM run_logs l JOIN runs r ON r.key = l.run_key WHERE r.id = ? ORDER BY l.seq DESC LIMIT ?`,
    ),
    updatesAfter: db.prepare<[string, number, number], UpdateRow & { seq: number }>(
      `SELECT ${UPDATE_COLUMNS} FROM run_updates u JOIN runs r ON r.key = u.run_key WHERE r.id = ? AND u.seq > ? ORDER BY u.seq LIMIT ?`,
    ),
    claimable: db.prepare<[string, number, number], RunRow>(
      `${RUN_SELECT} WHERE r.org_id = ? AND r.ended_at IS NULL AND r.has_agent_payload = 1
       AND (r.claim_by IS NULL OR (r.claim_acked = 0 AND r.claim_until < ?)) ORDER BY r.created_at LIMIT ?`,
    ),
    count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM runs'),
    org: db.prepare<[string], { orgId: string | null }>('SELECT org_id AS orgId FROM runs WHERE id = ?'),
    open: db.prepare<[], OpenRuns>(
      `SELECT CASE WHEN approval_state = 'WAITING' THEN 'WAITING_FOR_APPROVAL' ELSE 'IN_PROGRESS' END AS status,
              COUNT(*) AS count, MIN(created_at) AS oldestCreatedAt
       FROM runs WHERE ended_at IS NULL GROUP BY 1`,
    ),
    call: db.prepare<[string], CallRecord>(
      `SELECT org_id AS orgId, ended_at AS endedAt, approval_state AS approvalState, call_started_at AS callStartedAt, call_ended_at AS callEndedAt
       FROM runs WHERE id = ?`,
    ),
  };
}

/**
 * The run store as the routing thread reads it: a read-only connection to
 * the file the writer thread keeps (WAL: readers never wait for the
 * writer). Only point reads live here, each a few index lookups; lists
 * and counts run in the query thread. `reopen` follows the writer to a
 * new file (a corrupt one moved aside).
 */
/** Runs not ended of one status, with the creation time of the oldest. */
interface OpenRuns {
  status: 'IN_PROGRESS' | 'WAITING_FOR_APPROVAL';
  count: number;
  oldestCreatedAt: number;
}

export class RunStore {
  private db: Database.Database | null = null;
  private stmts: ReturnType<typeof statements> | null = null;
  /** True when the store started empty (new file, or rebuilt). */
  rebuilt = false;

  constructor(readonly path: string) {}

  /** (Re)opens the connection, after the writer opened the file. */
  reopen(rebuilt?: boolean): void {
    this.close();
    this.db = openReadOnly(this.path);
    this.stmts = statements(this.db);
    if (rebuilt !== undefined) this.rebuilt = rebuilt;
  }

  private get s(): ReturnType<typeof statements> {
    if (!this.stmts) throw Object.assign(new Error('the run store is not open yet'), { code: 'SQLITE_CANTOPEN' });
    return this.stmts;
  }

  /** The connection, for the dead-letter reader sharing it. */
  get connection(): Database.Database {
    if (!this.db) throw Object.assign(new Error('the run store is not open yet'), { code: 'SQLITE_CANTOPEN' });
    return this.db;
  }

  getRun(id: string): RunRow | undefined {
    return this.s.get.get(id);
  }

  /** The org of a stored run: undefined when the store does not know the run (or is not open yet). */
  orgOf(id: string): string | null | undefined {
    if (!this.stmts) return undefined;
    try {
      return this.stmts.org.get(id)?.orgId;
    } catch {
      // Unreadable now (the file being replaced): not known; the writer still refuses another org's updates.
      return undefined;
    }
  }

  /** What the store records of a run's call (undefined: no such run; throws while the store is not open). */
  callRecord(id: string): CallRecord | undefined {
    return this.s.call.get(id);
  }

  /** The approvers' decisions on a run, in order. */
  approvals(runId: string): ApprovalRow[] {
    return this.s.approvals.all(runId);
  }

  /** Runs of these trigger partitions still waiting (created before `createdBefore`), and approved runs not routed (decided before `decidedBefore`). */
  approvalSweep(partitions: readonly number[], createdBefore: number, decidedBefore: number): { expired: RunRow[]; stalled: RunRow[] } {
    if (partitions.length === 0) return { expired: [], stalled: [] };
    const db = this.connection;
    const inPartitions = `r.trigger_partition IN (${partitions.map(() => '?').join(', ')})`;
    const expired = db
      .prepare<unknown[], RunRow>(`${RUN_SELECT} WHERE r.approval_state = 'WAITING' AND r.created_at < ? AND ${inPartitions}`)
      .all(createdBefore, ...partitions);
    const stalled = db
      .prepare<unknown[], RunRow>(`${RUN_SELECT} WHERE r.approval_state = 'APPROVED' AND r.approval_decided_at < ? AND ${inPartitions}`)
      .all(decidedBefore, ...partitions);
    return { expired, stalled };
  }

  logs(runId: string, limit: number, offset: number): LogRow[] {
    return this.s.logs.all(runId, limit, offset).map(withoutSeq);
  }

  log(id: string): LogRow | undefined {
    const row = this.s.log.get(id);
    return row ? withoutSeq(row) : undefined;
  }

  /** A run's timeline after `afterSeq`, oldest first. */
  updatesAfter(runId: string, afterSeq: number, limit: number): (UpdateRow & { seq: number })[] {
    return this.s.updatesAfter.all(runId, afterSeq, limit);
  }

  updates(runId: string): UpdateRow[] {
    return this.updatesAfter(runId, 0, 1_000_000);
  }

  /** A run's logs after `afterSeq` (oldest first), or its last `limit` logs when `afterSeq` is null. */
  logsAfter(runId: string, afterSeq: number | null, limit: number): (LogRow & { seq: number })[] {
    if (afterSeq !== null) return this.s.logsAfter.all(runId, afterSeq, limit);
    return this.s.lastLogs.all(runId, limit).reverse();
  }

  /** Unfinished agent runs of an org that no agent holds at `now`, oldest first. */
  claimable(orgId: string, now: number, limit: number): RunRow[] {
    return this.s.claimable.all(orgId, now, limit);
  }

  /** Unfinished runs of these kinds with an external id, from these trigger partitions. */
  followable(types: readonly string[], partitions: readonly number[]): RunRow[] {
    if (types.length === 0 || partitions.length === 0) return [];
    return this.connection
      .prepare<unknown[], RunRow>(
        `${RUN_SELECT} WHERE r.ended_at IS NULL AND r.external_run_id IS NOT NULL
         AND r.invocation_type IN (${types.map(() => '?').join(', ')}) AND r.trigger_partition IN (${partitions.map(() => '?').join(', ')})`,
      )
      .all(...types, ...partitions);
  }

  count(): number {
    return this.s.count.get()!.n;
  }

  /**
   * Runs not ended, as waiting for approval or in progress (anything else
   * open: routed, delivered, followed), with the creation time of the
   * oldest of each; nothing while the store is not open.
   */
  openRuns(): OpenRuns[] {
    return this.stmts ? this.stmts.open.all() : [];
  }

  close(): void {
    this.db?.close();
    this.db = null;
    this.stmts = null;
  }
}

function withoutSeq(row: LogRow & { seq: number }): LogRow {
  return { id: row.id, runId: row.runId, message: row.message, createdBy: row.createdBy, createdAt: row.createdAt };
}

/** The run a stored row describes, as invokers read it (to follow it again). */
export function runFromRow(row: RunRow): FrozenRun {
  const entity = parsedJson<JsonObject | null>(row.entity, null);
  return Object.freeze({
    runId: row.id,
    orgId: row.orgId ?? '',
    action: row.action ?? '',
    actionTrigger: row.actionTrigger,
    origin: row.origin,
    triggeredAt: new Date(row.createdAt).toISOString(),
    userId: row.userId,
    user: row.userEmail ? { email: row.userEmail } : null,
    entityIdentifier: row.entityIdentifier,
    blueprint: row.blueprint,
    entity,
    invocationMethod: { agent: false, ...parsedJson<JsonObject>(row.invocation, {}), type: row.invocationType ?? '' } as InvocationMethod,
    properties: parsedJson<JsonObject>(row.properties, {}),
    censoredProperties: [],
  });
}
