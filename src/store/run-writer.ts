import type Database from 'better-sqlite3';
import type { RunStatusUpdate } from '../model/status';
import type { Decision, FoldedRun, RunDetails, RunState } from './folded-run';
import { fold, loaded } from './rules';
import { DETAIL_COLUMNS, STATE_COLUMNS, TimelineFields } from './schema';

/** What applying one update did (`invalid`: it can never apply and was skipped). */
export type ApplyResult = 'applied' | 'ignored' | 'undecodable' | 'invalid';

/** One status-topic record to apply. */
export interface WriterEntry {
  partition: number;
  offset: bigint;
  /** Null when it did not decode or is not a valid update (`problem` says why). */
  update: RunStatusUpdate | null;
  problem?: { result: 'undecodable' | 'invalid'; reason: string };
  /** The API's watch mark (x-store-watch), when the write carried one. */
  mark?: string;
}

export interface EntryResult {
  partition: number;
  offset: bigint;
  result: ApplyResult;
  mark?: string;
  /** Why an update was skipped (invalid, or for another org's run). */
  reason?: string;
}

export interface BatchOutcome {
  results: EntryResult[];
  /** Runs this transaction changed or reported on (the live feed, waiters). */
  runIds: string[];
  /** The org of each of `runIds` (null when the run has none). */
  orgIds: (string | null)[];
  /** The next offset of each partition the batch moved. */
  positions: Map<number, bigint>;
}

/** The id of the log an update at this position wrote: stable across rebuilds. */
/** A failpoint for crash tests: the process kills itself mid-transaction once this many updates were taken (0: never). */
const KILL_AT_UPDATE = Number(process.env.ACTION_ROUTER_TEST_KILL_AT_UPDATE ?? 0);

export function logIdAt(partition: number, offset: bigint): string {
  return `log_${partition.toString(36)}${offset.toString(36).padStart(8, '0')}`;
}

const STATE_FIELDS = [
  'id', 'orgId', 'action', 'status', 'statusLabel', 'summary', 'links', 'externalRunId', 'invocationType', 'blueprint',
  'entityIdentifier', 'userId', 'userEmail', 'origin', 'triggerPartition', 'hasAgentPayload', 'claimBy', 'claimUntil',
  'claimAcked', 'approvalType', 'approvers', 'approvalState', 'approvalBy', 'approvalDescription', 'approvalDecidedAt',
  'releasedAt', 'releasedNudge', 'repeats', 'resentFrom', 'callStartedAt', 'callEndedAt', 'createdBy', 'updatedBy', 'createdAt', 'updatedAt', 'endedAt',
] as const;
/** What a run's first update sets; the rest (claims, approvals) starts null and is written by an update when it is set. */
const CREATE_FIELDS = [
  'id', 'orgId', 'action', 'status', 'statusLabel', 'summary', 'links', 'externalRunId', 'invocationType', 'blueprint',
  'entityIdentifier', 'userId', 'userEmail', 'origin', 'triggerPartition', 'hasAgentPayload', 'repeats', 'resentFrom', 'callStartedAt', 'callEndedAt',
  'createdBy', 'updatedBy', 'createdAt', 'updatedAt', 'endedAt',
] as const;
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const marks = (n: number) => new Array(n).fill('?').join(', ');
// Positional parameters: binding 32 named ones costs twice as much per row.
const valuesOf = (fields: readonly (keyof RunState)[]) => new Function('s', `return [${fields.map((f) => `s.${f}`).join(', ')}];`) as (s: RunState) => unknown[];
const stateValues = valuesOf(STATE_FIELDS);
const createValues = valuesOf(CREATE_FIELDS);
/** A new run that already has a claim or an approval needs the full row written. */
const beyondCreate = (s: RunState) => s.claimBy !== null || s.approvalType !== null || s.approvalState !== null || s.releasedAt !== null || s.approvalBy !== null;

/** Rows a multi-row insert takes at once (SQLite's default limit is 32,766 parameters). */
const ROWS_PER_INSERT = 64;
/** Ids looked up in one IN (...) query. */
const IDS_PER_LOOKUP = 500;

interface TimelineRow extends TimelineFields {
  run: FoldedRun;
  offset: bigint;
  applied: boolean;
}

interface LogRow {
  id: string;
  run: FoldedRun;
  message: string;
  actor: string | null;
  at: number;
}

/** A multi-row INSERT prepared once per row count (full chunks reuse one statement). */
class MultiInsert<T> {
  private readonly byCount = new Map<number, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly head: string,
    private readonly columns: number,
    private readonly values: (row: T) => unknown[],
  ) {}

  run(rows: readonly T[]): void {
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + ROWS_PER_INSERT);
      let stmt = this.byCount.get(chunk.length);
      if (!stmt) {
        const one = `(${new Array(this.columns).fill('?').join(', ')})`;
        stmt = this.db.prepare(`${this.head} VALUES ${new Array(chunk.length).fill(one).join(', ')}`);
        this.byCount.set(chunk.length, stmt);
      }
      stmt.run(chunk.flatMap(this.values));
    }
  }
}

/**
 * The only writer of the run store. `apply` takes records of any
 * partitions, in topic order within each, and applies them in one
 * transaction with each partition's next offset: every run a batch touches
 * is read once, folded in memory (rules.ts) and written once.
 */
export class RunWriter {
  private readonly stmts;
  private readonly timeline: MultiInsert<TimelineRow>;
  private readonly logs: MultiInsert<LogRow>;
  private readonly lookups = new Map<number, Database.Statement<unknown[], RunState & { key: number }>>();

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      offsets: db.prepare<[], { partition: number; next_offset: string }>('SELECT partition, next_offset FROM offsets'),
      offset: db.prepare('INSERT INTO offsets (partition, next_offset) VALUES (?, ?) ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset'),
      details: db.prepare<[number], RunDetails>(`SELECT ${DETAIL_COLUMNS} FROM run_details WHERE key = ?`),
      decisions: db.prepare<[number], Decision>('SELECT client_id AS clientId, decision, description, at FROM run_approvals WHERE run_key = ? ORDER BY at'),
      insert: db.prepare(`INSERT INTO runs (${CREATE_FIELDS.map(snake).join(', ')}) VALUES (${marks(CREATE_FIELDS.length)})`),
      update: db.prepare(`UPDATE runs SET (${STATE_FIELDS.map(snake).join(', ')}) = (${marks(STATE_FIELDS.length)}) WHERE key = ?`),
      putDetails: db.prepare(`INSERT OR REPLACE INTO run_details (key, entity, properties, action_trigger, invocation, agent_payload, response, parked)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      search: db.prepare('INSERT OR REPLACE INTO runs_search (rowid, id, entity_identifier, external_run_id) VALUES (?, ?, ?, ?)'),
      decision: db.prepare('INSERT OR IGNORE INTO run_approvals (run_key, client_id, decision, description, at) VALUES (?, ?, ?, ?, ?)'),
    };
    this.timeline = new MultiInsert(db, 'INSERT INTO run_updates (run_key, partition, offset, applied, status, source, actor, status_label, summary, log, at)', 11, (t) => [
      keyOf(t.run), t.partition, String(t.offset), t.applied ? 1 : 0, t.status, t.source, t.actor, t.statusLabel, t.summary, t.log, t.at,
    ]);
    this.logs = new MultiInsert(db, 'INSERT OR IGNORE INTO run_logs (id, run_key, message, created_by, created_at)', 5, (l) => [l.id, keyOf(l.run), l.message, l.actor, l.at]);
  }

  /** Next offset to apply, per partition of the status topic. */
  offsets(): Map<number, bigint> {
    return new Map(this.stmts.offsets.all().map((r) => [r.partition, BigInt(r.next_offset)]));
  }

  /** Updates this writer has taken into transactions (the crash test's failpoint counts them). */
  private taken = 0;

  apply(entries: readonly WriterEntry[]): BatchOutcome {
    let outcome!: BatchOutcome;
    // IMMEDIATE: the offsets are read under the write lock, so two
    // processes sharing one file never apply the same update twice.
    this.db.transaction(() => (outcome = this.applyLocked(entries))).immediate();
    return outcome;
  }

  private applyLocked(entries: readonly WriterEntry[]): BatchOutcome {
    const stored = this.offsets();
    const fresh = entries.filter((e) => e.offset >= (stored.get(e.partition) ?? 0n));
    const runs = this.load(fresh);
    const results: EntryResult[] = [];
    const timeline: TimelineRow[] = [];
    const logs: LogRow[] = [];
    const touched = new Set<string>();
    const positions = new Map<number, bigint>();
    for (const e of fresh) {
      positions.set(e.partition, e.offset + 1n);
      const u = e.update;
      if (!u) {
        results.push({ partition: e.partition, offset: e.offset, result: e.problem?.result ?? 'undecodable', mark: e.mark, reason: e.problem?.reason });
        continue;
      }
      const before = runs.get(u.runId) ?? null;
      if (before?.state.orgId && u.orgId && before.state.orgId !== u.orgId) {
        results.push({ partition: e.partition, offset: e.offset, result: 'invalid', mark: e.mark, reason: `run ${u.runId} belongs to another org` });
        continue;
      }
      const r = fold(before, u);
      if (r.run && !before) runs.set(u.runId, r.run);
      touched.add(u.runId);
      results.push({ partition: e.partition, offset: e.offset, result: r.applied ? 'applied' : 'ignored', mark: e.mark });
      if (!r.run) continue;
      timeline.push({
        run: r.run, partition: e.partition, offset: e.offset, applied: r.applied, status: r.status, source: u.source,
        actor: r.actor, statusLabel: u.statusLabel, summary: u.summary, log: u.log, at: u.at,
      });
      if (r.log !== null) logs.push({ id: logIdAt(e.partition, e.offset), run: r.run, message: r.log, actor: r.actor, at: u.at });
    }
    for (const run of runs.values()) this.write(run);
    this.timeline.run(timeline);
    this.logs.run(logs);
    this.taken += fresh.length;
    // Tests only: die inside the transaction, its rows written and not committed (test/integration/store-crash.test.ts).
    if (KILL_AT_UPDATE > 0 && this.taken >= KILL_AT_UPDATE) process.kill(process.pid, 'SIGKILL');
    for (const [partition, next] of positions) this.stmts.offset.run(partition, String(next));
    const runIds = [...touched];
    return { results, runIds, orgIds: runIds.map((id) => runs.get(id)?.state.orgId ?? null), positions };
  }

  /** The runs the entries name, each read once (details and decisions only where an update may need them). */
  private load(entries: readonly WriterEntry[]): Map<string, FoldedRun> {
    const needsDetails = new Set<string>();
    const needsDecisions = new Set<string>();
    const ids = new Set<string>();
    for (const e of entries) {
      const u = e.update;
      if (!u) continue;
      ids.add(u.runId);
      if (u.run || u.response || u.approval) needsDetails.add(u.runId);
      if (u.approval) needsDecisions.add(u.runId);
    }
    const runs = new Map<string, FoldedRun>();
    const all = [...ids];
    for (let i = 0; i < all.length; i += IDS_PER_LOOKUP) {
      const chunk = all.slice(i, i + IDS_PER_LOOKUP);
      for (const row of this.lookup(chunk.length).all(...chunk)) {
        const { key, ...state } = row;
        // A run with approval state may hold a parked event that its end clears.
        const details = needsDetails.has(state.id) || state.approvalState !== null ? (this.stmts.details.get(key) ?? noDetails()) : noDetails();
        const decisions = needsDecisions.has(state.id) ? this.stmts.decisions.all(key) : [];
        const run = loaded(state, details, decisions);
        keys.set(run, key);
        runs.set(state.id, run);
      }
    }
    return runs;
  }

  private lookup(count: number): Database.Statement<unknown[], RunState & { key: number }> {
    let stmt = this.lookups.get(count);
    if (!stmt) {
      stmt = this.db.prepare(`SELECT ${STATE_COLUMNS} FROM runs WHERE id IN (${new Array(count).fill('?').join(', ')})`);
      this.lookups.set(count, stmt);
    }
    return stmt;
  }

  private write(run: FoldedRun): void {
    let key = keys.get(run);
    if (run.isNew) {
      key = Number(this.stmts.insert.run(createValues(run.state)).lastInsertRowid);
      keys.set(run, key);
      if (beyondCreate(run.state)) this.stmts.update.run(...stateValues(run.state), key);
    } else if (run.dirty.state) {
      this.stmts.update.run(...stateValues(run.state), key);
    }
    const d = run.details;
    if (run.isNew || run.dirty.details) this.stmts.putDetails.run(key, d.entity, d.properties, d.actionTrigger, d.invocation, d.agentPayload, d.response, d.parked);
    if (run.isNew || run.dirty.search) this.stmts.search.run(key, run.state.id, run.state.entityIdentifier, run.state.externalRunId);
    for (const d of run.newDecisions) this.stmts.decision.run(key, d.clientId, d.decision, d.description, d.at);
  }
}

/** Each folded run's integer key (set when it is read or inserted). */
const keys = new WeakMap<FoldedRun, number>();

function keyOf(run: FoldedRun): number {
  const key = keys.get(run);
  if (key === undefined) throw new Error(`run ${run.state.id} has no key`);
  return key;
}

function noDetails(): RunDetails {
  return { entity: null, properties: null, actionTrigger: null, invocation: null, agentPayload: null, response: null, parked: null };
}
