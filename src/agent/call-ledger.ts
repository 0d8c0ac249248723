import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, describeError } from '../errors';
import type { InvocationOutcome } from '../invokers/invoker';
import type { Logger } from '../log';
import type { FrozenRun } from '../model/run';
import type { CallLedger, CallRecord } from '../router/stages/once';

/** How often calls past the retention are pruned. */
export const LEDGER_PRUNE_EVERY_MS = 10 * 60_000;

/** The file's layout (SQLite's user_version); a file of another version is refused, not changed. */
const LEDGER_VERSION = 1;

const DDL = `
CREATE TABLE IF NOT EXISTS calls (
  run_id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  outcome TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
`;

/** Where the ledger is, and the variable that put it there (a file that cannot be written stops the start naming it). */
export interface AgentLedgerPlace {
  path: string;
  variable: 'AGENT_LEDGER_PATH' | 'DATA_DIR';
}

export interface AgentCallLedgerOptions extends AgentLedgerPlace {
  /** How long a call is kept, counted back from the latest call recorded (AGENT_LEDGER_RETENTION_HOURS). */
  retentionMs: number;
  logger: Logger;
  /** How often to prune; default LEDGER_PRUNE_EVERY_MS. */
  pruneEveryMs?: number;
  /** The clock of the records (tests). */
  now?: () => number;
}

interface CallRow {
  orgId: string;
  startedAt: number;
  endedAt: number | null;
}

/**
 * `action-router agent`'s memory of its own calls (stage "once"): an agent
 * has no run store, so it keeps a small SQLite file of its own. A call's
 * start is written before the call is made, its end once its outcome is
 * reported; a trigger redelivered after a crash is then skipped when its
 * call ended, and called again, in doubt, when it was under way.
 *
 * Durability: WAL with synchronous=NORMAL. A record is in the operating
 * system's hands once its statement returns, so it survives the process
 * being killed (kill -9, an OOM kill). A power loss or a kernel crash may
 * lose the last records: the runs they were about are then called again,
 * at least once, as without a ledger.
 *
 * One process writes the file (named for the org; two agent processes must
 * not share one): a call recorded STARTED with no outcome is under way
 * nowhere else, so it is in doubt at once (`doubtMs` 0), and nothing else
 * updates a run while it is waited for. Agents of one group keep a file
 * each: a partition that moves to another agent after a crash moves without
 * its memory (at least once there, as without a ledger).
 */
export class AgentCallLedger implements CallLedger {
  readonly doubtMs = 0;
  readonly path: string;
  private readonly db: Database.Database;
  private readonly sql: {
    start: Database.Statement<[string, string, number]>;
    end: Database.Statement<[number, string, string]>;
    read: Database.Statement<[string], CallRow>;
    prune: Database.Statement<[number]>;
  };
  private readonly now: () => number;
  private readonly pruner: NodeJS.Timeout;
  /** Why the last write failed, until one succeeds. */
  private failure: string | null = null;

  /** Opens (or creates) the file; throws a ConfigError naming `variable` when it cannot be opened and written. */
  constructor(private readonly options: AgentCallLedgerOptions) {
    this.path = options.path;
    this.now = options.now ?? Date.now;
    this.db = open(options);
    this.sql = {
      start: this.db.prepare(
        // Called again in doubt: the record starts over (another org's record of the run id is replaced: stage "once" called it as new).
        'INSERT INTO calls (run_id, org_id, started_at, ended_at, outcome) VALUES (?, ?, ?, NULL, NULL) ON CONFLICT (run_id) DO UPDATE SET org_id = excluded.org_id, started_at = excluded.started_at, ended_at = NULL, outcome = NULL',
      ),
      end: this.db.prepare('UPDATE calls SET ended_at = ?, outcome = ? WHERE run_id = ?'),
      read: this.db.prepare('SELECT org_id AS orgId, started_at AS startedAt, ended_at AS endedAt FROM calls WHERE run_id = ?'),
      // Counted back from the latest call, not from now: after the agent was stopped longer than the retention, the
      // calls made just before the stop are the ones its redelivered triggers need.
      prune: this.db.prepare('DELETE FROM calls WHERE started_at < (SELECT MAX(started_at) FROM calls) - ?'),
    };
    this.pruneLogged();
    this.pruner = setInterval(() => this.pruneLogged(), options.pruneEveryMs ?? LEDGER_PRUNE_EVERY_MS);
    this.pruner.unref();
  }

  /** The file is local and only this process writes it: always current. */
  current(): undefined {
    return undefined;
  }

  record(runId: string): CallRecord | undefined {
    const row = this.sql.read.get(runId);
    if (!row) return undefined;
    // The agent knows its calls, not the runs' ends nor approvals (routers handle those before the org topic).
    return { orgId: row.orgId, endedAt: null, approvalState: null, callStartedAt: row.startedAt, callEndedAt: row.endedAt };
  }

  /** Nothing else writes the file: no update of the run is coming. */
  awaitRun(): Promise<void> {
    return Promise.resolve();
  }

  started(run: FrozenRun): void {
    this.write(() => this.sql.start.run(run.runId, run.orgId, this.now()));
  }

  ended(run: FrozenRun, outcome: InvocationOutcome['status']): void {
    this.write(() => this.sql.end.run(this.now(), outcome, run.runId));
  }

  /** Deletes the calls started longer than the retention before the latest one; returns how many. */
  prune(): number {
    return this.sql.prune.run(this.options.retentionMs).changes;
  }

  /** Why readiness is false: the ledger cannot be written, so calls wait. */
  problem(): string | null {
    return this.failure === null ? null : `the agent's call ledger ${this.path} cannot be written (${this.failure}): runs wait to be called until it can`;
  }

  /** Stops pruning and closes the file; safe to call more than once. */
  close(): void {
    clearInterval(this.pruner);
    if (this.db.open) this.db.close();
  }

  private write(statement: () => void): void {
    try {
      statement();
      this.failure = null;
    } catch (err) {
      this.failure = describeError(err);
      throw err;
    }
  }

  private pruneLogged(): void {
    try {
      const pruned = this.prune();
      if (pruned > 0) this.options.logger.debug({ pruned, path: this.path }, 'pruned calls past the retention from the call ledger');
    } catch (err) {
      this.options.logger.warn({ err: describeError(err), path: this.path }, 'cannot prune the call ledger; trying again later');
    }
  }
}

/** The file, open for writing, or a ConfigError naming the variable that put it there. */
function open({ path, variable }: AgentLedgerPlace): Database.Database {
  let db: Database.Database | undefined;
  try {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Another process holding the file (a sqlite3 shell) is waited for briefly: the wait blocks the event loop, so a
    // longer hold fails the write, and stage "invoke" tries again later.
    db.pragma('busy_timeout = 100');
    const version = db.pragma('user_version', { simple: true }) as number;
    const foreign = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'calls' LIMIT 1").get() as { name: string } | undefined;
    if ((version !== 0 && version !== LEDGER_VERSION) || foreign) {
      throw new Error(foreign ? `it holds another program's tables (${foreign.name})` : `it is of another version (${version})`);
    }
    db.exec(DDL);
    // A write at every start: a file or a volume that opens read-only stops the start here, not at the first call.
    db.pragma(`user_version = ${LEDGER_VERSION}`);
    return db;
  } catch (err) {
    db?.close();
    const { code, message = String(err) } = err as Partial<NodeJS.ErrnoException>;
    const why = code && !message.includes(code) ? `${code}: ${message}` : message;
    throw new ConfigError(variable, `the agent's call ledger ${path} cannot be opened for writing (${why}): mount a writable volume there, or set ${variable}`);
  }
}
