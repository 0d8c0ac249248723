import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Json, JsonObject } from '../model/json';
import type { FrozenRun, InvocationMethod } from '../model/run';
import { RunInfo, RunStatusUpdate, isTerminal } from '../model/status';
import { migrate, wipe } from './schema';

/** One run as the store keeps it (column names in camelCase). */
export interface RunRow {
  id: string;
  orgId: string | null;
  action: string | null;
  status: string;
  statusLabel: string | null;
  summary: string | null;
  links: string;
  externalRunId: string | null;
  invocationType: string | null;
  response: string | null;
  blueprint: string | null;
  entityIdentifier: string | null;
  entity: string | null;
  properties: string | null;
  userId: string | null;
  userEmail: string | null;
  origin: string | null;
  actionTrigger: string | null;
  invocation: string | null;
  triggerPartition: number | null;
  agentPayload: string | null;
  claimBy: string | null;
  claimUntil: number | null;
  claimAcked: number;
  /** ANY or ALL when the run needed approval. */
  approvalType: string | null;
  /** JSON array of the client ids that may decide. */
  approvers: string | null;
  /** WAITING, APPROVED (complete, not routed yet), RELEASED, DECLINED, CANCELLED, TIMED_OUT. */
  approvalState: string | null;
  /** The encrypted trigger event of a waiting run (routers read it on release). */
  parked: string | null;
  approvalBy: string | null;
  approvalDescription: string | null;
  approvalDecidedAt: number | null;
  releasedAt: number | null;
  /** The nudge (`partition:offset`) whose release was applied. */
  releasedNudge: string | null;
  createdBy: string | null;
  updatedBy: string | null;
  createdAt: number;
  updatedAt: number;
  endedAt: number | null;
}

export interface LogRow {
  id: string;
  runId: string;
  message: string;
  createdBy: string | null;
  createdAt: number;
}

/** One approver's decision on a run. */
export interface ApprovalRow {
  clientId: string;
  decision: 'APPROVED' | 'DECLINED';
  description: string | null;
  at: number;
}

export interface UpdateRow {
  partition: number;
  offset: string;
  applied: number;
  status: string;
  source: string;
  actor: string | null;
  statusLabel: string | null;
  summary: string | null;
  log: string | null;
  at: number;
}

/** What applying one update did. */
export type ApplyResult = 'applied' | 'ignored' | 'undecodable';

/** One status-topic record to apply; `update` is null when it did not decode. */
export interface StoreEntry {
  offset: bigint;
  update: RunStatusUpdate | null;
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
  limit: number;
  offset?: number;
}

const COLUMNS = `id, org_id AS orgId, action, status, status_label AS statusLabel, summary, links,
  external_run_id AS externalRunId, invocation_type AS invocationType, response, blueprint,
  entity_identifier AS entityIdentifier, entity, properties, user_id AS userId, user_email AS userEmail,
  origin, action_trigger AS actionTrigger, invocation, trigger_partition AS triggerPartition,
  agent_payload AS agentPayload, claim_by AS claimBy, claim_until AS claimUntil, claim_acked AS claimAcked,
  approval_type AS approvalType, approvers, approval_state AS approvalState, parked, approval_by AS approvalBy,
  approval_description AS approvalDescription, approval_decided_at AS approvalDecidedAt, released_at AS releasedAt, released_nudge AS releasedNudge,
  created_by AS createdBy, updated_by AS updatedBy, created_at AS createdAt, updated_at AS updatedAt, ended_at AS endedAt`;

const NO_INFO: RunInfo = {
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
};

/** The id of the log an update at this position wrote: stable across rebuilds. */
export function logIdAt(partition: number, offset: bigint): string {
  return `log_${partition.toString(36)}${offset.toString(36).padStart(8, '0')}`;
}

/**
 * The current state of every run, materialized from the status topic
 * (SQLite, WAL). Written only by `applyBatch` (the apply loop); read by the
 * API and the console. Synchronous: better-sqlite3 answers in microseconds
 * and a transaction never waits on the network.
 */
export class RunStore {
  readonly db: Database.Database;
  /** True when this store started empty (new file, or rebuilt). */
  readonly rebuilt: boolean;
  private readonly stmts;

  constructor(
    readonly path: string,
    readonly topic: string,
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // WAL with NORMAL is durable across process crashes (kill -9); only a
    // power loss can roll back the last transactions, and those are
    // re-applied from the topic because their offsets roll back with them.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.rebuilt = migrate(this.db, topic);
    const db = this.db;
    this.stmts = {
      get: db.prepare<[string], RunRow>(`SELECT ${COLUMNS} FROM runs WHERE id = ?`),
      insert: db.prepare(`INSERT INTO runs (id, org_id, action, status, status_label, summary, links, external_run_id,
        invocation_type, response, created_by, updated_by, created_at, updated_at, ended_at, blueprint, entity_identifier,
        entity, properties, user_id, user_email, origin, action_trigger, invocation, trigger_partition, agent_payload)
        VALUES (@id, @orgId, @action, @status, @statusLabel, @summary, @links, @externalRunId, @invocationType,
        @response, COALESCE(@userEmail, @userId, @actor), @actor, @createdAt, @at, @endedAt, @blueprint, @entityIdentifier,
        @entity, @properties, @userId, @userEmail, @origin, @actionTrigger, @invocation, @triggerPartition, @agentPayload)`),
      update: db.prepare(`UPDATE runs SET status = @status,
        org_id = COALESCE(org_id, @orgId), action = COALESCE(action, @action),
        status_label = COALESCE(@statusLabel, status_label), summary = COALESCE(@summary, summary),
        links = CASE WHEN @links = '[]' THEN links ELSE @links END,
        external_run_id = COALESCE(@externalRunId, external_run_id),
        invocation_type = COALESCE(invocation_type, @invocationType),
        response = COALESCE(@response, response), updated_by = @actor, updated_at = @at, ended_at = @endedAt,
        parked = CASE WHEN @endedAt IS NULL THEN parked END
        WHERE id = @id`),
      info: db.prepare(`UPDATE runs SET blueprint = COALESCE(@blueprint, blueprint),
        entity_identifier = COALESCE(@entityIdentifier, entity_identifier), entity = COALESCE(@entity, entity),
        properties = COALESCE(@properties, properties), user_id = COALESCE(@userId, user_id),
        user_email = COALESCE(@userEmail, user_email), origin = COALESCE(@origin, origin),
        action_trigger = COALESCE(@actionTrigger, action_trigger), invocation = COALESCE(@invocation, invocation),
        trigger_partition = COALESCE(@triggerPartition, trigger_partition),
        agent_payload = COALESCE(@agentPayload, agent_payload),
        created_at = COALESCE(@createdAt, created_at), created_by = COALESCE(created_by, @userEmail, @userId),
        org_id = COALESCE(org_id, @orgId), action = COALESCE(action, @action)
        WHERE id = @id`),
      claim: db.prepare('UPDATE runs SET claim_by = ?, claim_until = ?, claim_acked = ? WHERE id = ?'),
      park: db.prepare("UPDATE runs SET approval_type = ?, approvers = ?, approval_state = 'WAITING', parked = ? WHERE id = ?"),
      approvalState: db.prepare('UPDATE runs SET approval_state = ?, parked = CASE WHEN ? THEN NULL ELSE parked END WHERE id = ?'),
      decision: db.prepare('UPDATE runs SET approval_by = ?, approval_description = ?, approval_decided_at = ? WHERE id = ?'),
      released: db.prepare("UPDATE runs SET approval_state = 'RELEASED', released_at = ?, released_nudge = ? WHERE id = ?"),
      approve: db.prepare('INSERT OR IGNORE INTO run_approvals (run_id, client_id, decision, description, at) VALUES (?, ?, ?, ?, ?)'),
      approvals: db.prepare<[string], ApprovalRow>('SELECT client_id AS clientId, decision, description, at FROM run_approvals WHERE run_id = ? ORDER BY at, rowid'),
      log: db.prepare('INSERT OR IGNORE INTO run_logs (id, run_id, message, created_by, created_at) VALUES (?, ?, ?, ?, ?)'),
      timeline: db.prepare(`INSERT INTO run_updates (run_id, partition, offset, applied, status, source, actor, status_label, summary, log, at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      offset: db.prepare('INSERT INTO offsets (partition, next_offset) VALUES (?, ?) ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset'),
      offsets: db.prepare<[], { partition: number; next_offset: string }>('SELECT partition, next_offset FROM offsets'),
      logs: db.prepare<[string, number, number], LogRow>(
        'SELECT id, run_id AS runId, message, created_by AS createdBy, created_at AS createdAt FROM run_logs WHERE run_id = ? ORDER BY seq LIMIT ? OFFSET ?',
      ),
      updates: db.prepare<[string], UpdateRow>(
        `SELECT partition, offset, applied, status, source, actor, status_label AS statusLabel, summary, log, at
         FROM run_updates WHERE run_id = ? ORDER BY seq`,
      ),
    };
  }

  /** Next offset to apply, per partition of the status topic. */
  offsets(): Map<number, bigint> {
    return new Map(this.stmts.offsets.all().map((r) => [r.partition, BigInt(r.next_offset)]));
  }

  /**
   * Applies one partition's records, in order, in one transaction with the
   * partition's next offset. Records below the stored offset were applied
   * already and are passed over, so a replay changes nothing.
   */
  applyBatch(partition: number, entries: readonly StoreEntry[]): Map<bigint, ApplyResult> {
    const results = new Map<bigint, ApplyResult>();
    const tx = this.db.transaction(() => {
      const next = this.offsets().get(partition) ?? 0n;
      let last: bigint | null = null;
      for (const e of entries) {
        if (e.offset < next) continue;
        results.set(e.offset, e.update ? this.applyOne(partition, e.offset, e.update) : 'undecodable');
        last = e.offset;
      }
      if (last !== null) this.stmts.offset.run(partition, String(last + 1n));
    });
    // IMMEDIATE: the offsets are read under the write lock, so two
    // processes sharing one file never apply the same update twice.
    tx.immediate();
    return results;
  }

  private applyOne(partition: number, offset: bigint, u: RunStatusUpdate): ApplyResult {
    const row = this.stmts.get.get(u.runId);
    const actor = u.actor ?? (u.source === 'ROUTER' ? 'action-router' : null);
    // The finer status (WAITING_FOR_APPROVAL, DECLINED) is what the store shows.
    const status = u.statusDetail ?? u.status;
    const ended = isTerminal(status) ? u.at : null;
    const fields = {
      id: u.runId,
      orgId: u.orgId,
      action: u.action,
      status,
      statusLabel: u.statusLabel,
      summary: u.summary,
      links: JSON.stringify(u.links ?? []),
      externalRunId: u.externalRunId,
      invocationType: u.invocationType,
      response: u.response ?? null,
      actor,
      at: u.at,
      endedAt: ended,
    };
    let applied: boolean;
    if (!row) {
      // A decision for a run the store does not know decides nothing.
      applied = !u.approval || u.approval.event === 'REQUESTED';
      if (applied) {
        this.stmts.insert.run({ ...fields, ...(u.run ?? NO_INFO), createdAt: u.run?.createdAt ?? u.at });
        if (u.approval) this.stmts.park.run(u.approval.type ?? 'ANY', JSON.stringify(u.approval.approvers ?? []), u.approval.parked, u.runId);
      }
    } else if (u.approval) {
      applied = this.applyApproval(row, u, fields);
    } else {
      // While a run waits for approval, only approval steps change it.
      applied = row.endedAt === null && row.approvalState !== 'WAITING' && row.approvalState !== 'APPROVED';
      if (applied) this.stmts.update.run(fields);
    }
    // What the run is fills in even after it ended: a backend can report
    // the end before the router's first update is on the topic.
    if (u.run && row) this.stmts.info.run({ id: u.runId, orgId: u.orgId, action: u.action, ...u.run });
    if (u.claim) applied = applied && this.applyClaim(row, u);
    if (applied && u.log) this.stmts.log.run(logIdAt(partition, offset), u.runId, u.log, actor, u.at);
    this.stmts.timeline.run(u.runId, partition, String(offset), applied ? 1 : 0, status, u.source, actor, u.statusLabel, u.summary, u.log, u.at);
    return applied ? 'applied' : 'ignored';
  }

  /**
   * One approval step, applied only in the state it belongs to: decisions
   * while the run waits, one per approver; cancel and timeout until the run
   * is released; the release once, after approval. Topic order decides
   * every race, the same way in every instance.
   */
  private applyApproval(row: RunRow, u: RunStatusUpdate, fields: Record<string, unknown>): boolean {
    const a = u.approval!;
    const state = row.approvalState;
    switch (a.event) {
      case 'APPROVED':
      case 'DECLINED': {
        if (state !== 'WAITING' || !a.by) return false;
        if (this.stmts.approve.run(u.runId, a.by, a.event, a.description, u.at).changes === 0) return false;
        this.stmts.decision.run(a.by, a.description, u.at, u.runId);
        if (a.event === 'DECLINED') {
          this.stmts.update.run(fields);
          this.stmts.approvalState.run('DECLINED', 1, u.runId);
          return true;
        }
        const approvers = JSON.parse(row.approvers ?? '[]') as string[];
        const approved = new Set(this.stmts.approvals.all(u.runId).filter((d) => d.decision === 'APPROVED').map((d) => d.clientId));
        // ANY: one approval; ALL: every listed approver; an org admin's approval (type ADMIN) decides alone.
        const complete = a.type === 'ADMIN' || row.approvalType !== 'ALL' || approvers.every((c) => approved.has(c));
        this.stmts.update.run({ ...fields, endedAt: null });
        if (complete) this.stmts.approvalState.run('APPROVED', 0, u.runId);
        return true;
      }
      case 'CANCELLED':
      case 'TIMED_OUT':
        if (state !== 'WAITING' && state !== 'APPROVED') return false;
        this.stmts.update.run(fields);
        if (a.event === 'CANCELLED' && a.by) this.stmts.decision.run(a.by, a.description, u.at, u.runId);
        this.stmts.approvalState.run(a.event, 1, u.runId);
        return true;
      case 'NOTED':
        return state === 'WAITING' || state === 'APPROVED';
      case 'RELEASED':
        if (state !== 'APPROVED') return false;
        this.stmts.update.run(fields);
        this.stmts.released.run(u.at, a.description, u.runId);
        return true;
      default:
        return false;
    }
  }

  /**
   * A claim holds when the run is free (never claimed, or an unacknowledged
   * claim that lapsed by the time of this update); an acknowledgement holds
   * for the claim's own holder. Topic order decides between racing agents.
   */
  private applyClaim(row: RunRow | undefined, u: RunStatusUpdate): boolean {
    const c = u.claim!;
    if (!row) return false;
    if (c.acked) {
      if (row.claimBy !== c.by) return false;
      this.stmts.claim.run(c.by, row.claimUntil, 1, u.runId);
      return true;
    }
    const free = row.claimBy === null || (row.claimAcked === 0 && (row.claimUntil ?? 0) < u.at);
    if (!free) return false;
    this.stmts.claim.run(c.by, c.until, 0, u.runId);
    return true;
  }

  getRun(id: string): RunRow | undefined {
    return this.stmts.get.get(id);
  }

  /** The approvers' decisions on a run, in order. */
  approvals(runId: string): ApprovalRow[] {
    return this.stmts.approvals.all(runId);
  }

  /**
   * Runs of these trigger partitions still waiting (created before
   * `createdBefore`), and runs approved but not routed (decided before
   * `decidedBefore`): the partition owner's sweep ends the first (the
   * approval timeout) and routes the second (a release nudge was lost).
   */
  approvalSweep(partitions: readonly number[], createdBefore: number, decidedBefore: number): { expired: RunRow[]; stalled: RunRow[] } {
    if (partitions.length === 0) return { expired: [], stalled: [] };
    const inPartitions = `trigger_partition IN (${partitions.map(() => '?').join(', ')})`;
    const expired = this.db
      .prepare<unknown[], RunRow>(`SELECT ${COLUMNS} FROM runs WHERE approval_state = 'WAITING' AND created_at < ? AND ${inPartitions}`)
      .all(createdBefore, ...partitions);
    const stalled = this.db
      .prepare<unknown[], RunRow>(`SELECT ${COLUMNS} FROM runs WHERE approval_state = 'APPROVED' AND approval_decided_at < ? AND ${inPartitions}`)
      .all(decidedBefore, ...partitions);
    return { expired, stalled };
  }

  logs(runId: string, limit: number, offset: number): LogRow[] {
    return this.stmts.logs.all(runId, limit, offset);
  }

  log(id: string): LogRow | undefined {
    return this.db
      .prepare<[string], LogRow>('SELECT id, run_id AS runId, message, created_by AS createdBy, created_at AS createdAt FROM run_logs WHERE id = ?')
      .get(id);
  }

  updates(runId: string): UpdateRow[] {
    return this.stmts.updates.all(runId);
  }

  listRuns(f: RunFilter): RunRow[] {
    const { sql, params } = whereOf(f);
    return this.db
      .prepare<unknown[], RunRow>(`SELECT ${COLUMNS} FROM runs ${sql} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`)
      .all(...params, f.limit, f.offset ?? 0);
  }

  /** How many runs match `f` (its limit and offset aside). */
  countRuns(f: Omit<RunFilter, 'limit'>): number {
    const { sql, params } = whereOf(f);
    return (this.db.prepare<unknown[], { n: number }>(`SELECT COUNT(*) AS n FROM runs ${sql}`).get(...params) as { n: number }).n;
  }

  /** A run's timeline after `afterSeq`, oldest first. */
  updatesAfter(runId: string, afterSeq: number, limit: number): (UpdateRow & { seq: number })[] {
    return this.db
      .prepare<[string, number, number], UpdateRow & { seq: number }>(
        `SELECT seq, partition, offset, applied, status, source, actor, status_label AS statusLabel, summary, log, at
         FROM run_updates WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
      )
      .all(runId, afterSeq, limit);
  }

  /** A run's logs after `afterSeq` (oldest first), or its last `limit` logs when `afterSeq` is null. */
  logsAfter(runId: string, afterSeq: number | null, limit: number): (LogRow & { seq: number })[] {
    const cols = 'seq, id, run_id AS runId, message, created_by AS createdBy, created_at AS createdAt';
    if (afterSeq !== null) {
      return this.db
        .prepare<[string, number, number], LogRow & { seq: number }>(`SELECT ${cols} FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
        .all(runId, afterSeq, limit);
    }
    return this.db
      .prepare<[string, number], LogRow & { seq: number }>(`SELECT ${cols} FROM run_logs WHERE run_id = ? ORDER BY seq DESC LIMIT ?`)
      .all(runId, limit)
      .reverse();
  }

  /**
   * The console's overview of one org (or all): runs started per minute over
   * the last `minutes`, runs ended in that window by status, runs not
   * ended, and runs waiting for approval.
   */
  overview(orgId: string | undefined, now: number, minutes: number): { perMinute: number[]; ended: Record<string, number>; inFlight: number; waiting: number } {
    const since = now - minutes * 60_000;
    const org = orgId === undefined ? '' : ' AND org_id = @orgId';
    const params = { since, orgId, now };
    const perMinute = new Array<number>(minutes).fill(0);
    const started = this.db
      .prepare(`SELECT (@now - created_at) / 60000 AS ago, COUNT(*) AS n FROM runs WHERE created_at > @since${org} GROUP BY 1`)
      .all(params) as { ago: number; n: number }[];
    for (const { ago, n } of started) {
      const i = minutes - 1 - Math.floor(ago);
      if (i >= 0 && i < minutes) perMinute[i] = perMinute[i]! + n;
    }
    const ended: Record<string, number> = {};
    const byStatus = this.db
      .prepare(`SELECT status, COUNT(*) AS n FROM runs WHERE ended_at > @since${org} GROUP BY status`)
      .all(params) as { status: string; n: number }[];
    for (const { status, n } of byStatus) ended[status] = n;
    const inFlight = (this.db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE ended_at IS NULL${org}`).get(params) as { n: number }).n;
    const waiting = (this.db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE approval_state = 'WAITING'${org}`).get(params) as { n: number }).n;
    return { perMinute, ended, inFlight, waiting };
  }

  /** Unfinished agent runs of an org that no agent holds at `now`, oldest first. */
  claimable(orgId: string, now: number, limit: number): RunRow[] {
    return this.db
      .prepare<[string, number, number], RunRow>(
        `SELECT ${COLUMNS} FROM runs WHERE org_id = ? AND ended_at IS NULL AND agent_payload IS NOT NULL
         AND (claim_by IS NULL OR (claim_acked = 0 AND claim_until < ?)) ORDER BY created_at, rowid LIMIT ?`,
      )
      .all(orgId, now, limit);
  }

  /** Unfinished runs of these kinds with an external id, from these trigger partitions. */
  followable(types: readonly string[], partitions: readonly number[]): RunRow[] {
    if (types.length === 0 || partitions.length === 0) return [];
    return this.db
      .prepare<unknown[], RunRow>(
        `SELECT ${COLUMNS} FROM runs WHERE ended_at IS NULL AND external_run_id IS NOT NULL
         AND invocation_type IN (${types.map(() => '?').join(', ')}) AND trigger_partition IN (${partitions.map(() => '?').join(', ')})`,
      )
      .all(...types, ...partitions);
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n;
  }

  /** Empties the store (the status topic was recreated): it is rebuilt from the topic. */
  reset(): void {
    wipe(this.db);
    migrate(this.db, this.topic);
  }

  close(): void {
    this.db.close();
  }
}

function whereOf(f: Omit<RunFilter, 'limit'>): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const eq = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(`${column} = ?`);
    params.push(value);
  };
  const oneOf = (column: string, values: string[] | undefined) => {
    if (!values?.length) return;
    where.push(`${column} IN (${values.map(() => '?').join(', ')})`);
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
  if (f.active) where.push('ended_at IS NULL');
  if (f.text) {
    where.push("(id LIKE ? ESCAPE '\\' OR entity_identifier LIKE ? ESCAPE '\\' OR external_run_id LIKE ? ESCAPE '\\')");
    const like = `%${f.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    params.push(like, like, like);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}

function parsed<T extends Json>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** The run a stored row describes, as invokers read it (to follow it again). */
export function runFromRow(row: RunRow): FrozenRun {
  const entity = parsed<JsonObject | null>(row.entity, null);
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
    invocationMethod: { agent: false, ...parsed<JsonObject>(row.invocation, {}), type: row.invocationType ?? '' } as InvocationMethod,
    properties: parsed<JsonObject>(row.properties, {}),
    censoredProperties: [],
  });
}
