import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * The run store's tables. `offsets` holds, per status-topic partition, the
 * next offset to apply; it is written in the same transaction as the rows
 * an update produced, so a crash never applies an update twice or skips one.
 * Bump SCHEMA_VERSION with every change: a store of another version is
 * rebuilt from the topic (the topic is the log of record).
 *
 * `runs` holds what changes while a run goes on and what lists filter on;
 * `run_details` what is written once or rarely (entity, inputs, invocation,
 * the response, the parked event), so that an update rewrites a short row.
 * Child rows point at `runs.key`, an integer.
 */
export const SCHEMA_VERSION = 7;

const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (partition INTEGER PRIMARY KEY, next_offset TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  org_id TEXT,
  action TEXT,
  status TEXT NOT NULL,
  status_label TEXT,
  summary TEXT,
  links TEXT NOT NULL DEFAULT '[]',
  external_run_id TEXT,
  invocation_type TEXT,
  blueprint TEXT,
  entity_identifier TEXT,
  user_id TEXT,
  user_email TEXT,
  origin TEXT,
  trigger_partition INTEGER,
  has_agent_payload INTEGER NOT NULL DEFAULT 0,
  claim_by TEXT,
  claim_until INTEGER,
  claim_acked INTEGER NOT NULL DEFAULT 0,
  approval_type TEXT,
  approvers TEXT,
  approval_state TEXT,
  call_started_at INTEGER,
  call_ended_at INTEGER,
  approval_by TEXT,
  approval_description TEXT,
  approval_decided_at INTEGER,
  released_at INTEGER,
  released_nudge TEXT,
  repeats TEXT,
  resent_from TEXT,
  created_by TEXT,
  updated_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC, key DESC);
CREATE INDEX IF NOT EXISTS runs_org_created ON runs (org_id, created_at DESC, key DESC);
CREATE INDEX IF NOT EXISTS runs_external ON runs (external_run_id) WHERE external_run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_entity ON runs (entity_identifier) WHERE entity_identifier IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_active ON runs (org_id, created_at) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_approval ON runs (approval_state) WHERE approval_state IN ('WAITING', 'APPROVED');
CREATE TABLE IF NOT EXISTS run_details (
  key INTEGER PRIMARY KEY,
  entity TEXT,
  properties TEXT,
  action_trigger TEXT,
  invocation TEXT,
  agent_payload TEXT,
  response TEXT,
  parked TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS runs_search USING fts5(id, entity_identifier, external_run_id, content='', contentless_delete=1, tokenize='trigram');
CREATE TABLE IF NOT EXISTS run_approvals (
  run_key INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  decision TEXT NOT NULL,
  description TEXT,
  at INTEGER NOT NULL,
  PRIMARY KEY (run_key, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_logs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  run_key INTEGER NOT NULL,
  message TEXT NOT NULL,
  created_by TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_logs_run ON run_logs (run_key, seq);
CREATE TABLE IF NOT EXISTS run_updates (
  seq INTEGER PRIMARY KEY,
  run_key INTEGER NOT NULL,
  partition INTEGER NOT NULL,
  offset TEXT NOT NULL,
  applied INTEGER NOT NULL,
  status TEXT NOT NULL,
  source TEXT NOT NULL,
  actor TEXT,
  status_label TEXT,
  summary TEXT,
  log TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_updates_run ON run_updates (run_key, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
  seq INTEGER PRIMARY KEY,
  partition INTEGER NOT NULL,
  offset TEXT NOT NULL,
  reason TEXT,
  error TEXT,
  source_topic TEXT,
  source_partition INTEGER,
  source_offset TEXT,
  run_id TEXT,
  org_id TEXT,
  at INTEGER NOT NULL,
  key BLOB,
  value BLOB,
  size INTEGER NOT NULL,
  trimmed INTEGER NOT NULL,
  headers TEXT NOT NULL,
  -- 0: the value as on the topic; 1: masked as the run page masks; 2: withheld (see letter-mask.ts).
  copy INTEGER NOT NULL DEFAULT 0,
  UNIQUE (partition, offset)
);
CREATE INDEX IF NOT EXISTS dead_letters_org ON dead_letters (org_id, seq);
CREATE TABLE IF NOT EXISTS dlq_offsets (partition INTEGER PRIMARY KEY, next_offset TEXT NOT NULL);
`;

const TABLES = ['runs', 'run_details', 'runs_search', 'run_logs', 'run_updates', 'run_approvals', 'offsets', 'dead_letters', 'dlq_offsets'];

/**
 * Creates the tables, or empties a store written by another schema version
 * or for another status topic (both are rebuilt from the topic).
 * Returns true when the store starts empty.
 */
export function migrate(db: Database.Database, topic: string): boolean {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);');
  const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const version = get.get('schema_version')?.value;
  const storedTopic = get.get('status_topic')?.value;
  const fresh = version === undefined;
  if (!fresh && (version !== String(SCHEMA_VERSION) || storedTopic !== topic)) wipe(db);
  db.exec(DDL);
  const set = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  set.run('schema_version', String(SCHEMA_VERSION));
  set.run('status_topic', topic);
  return fresh || version !== String(SCHEMA_VERSION) || storedTopic !== topic;
}

/** Drops every table: the next migrate() starts an empty store. */
export function wipe(db: Database.Database): void {
  // Tables of earlier versions too (runs were keyed by their id before version 4).
  db.exec(`${TABLES.map((t) => `DROP TABLE IF EXISTS ${t};`).join(' ')} DELETE FROM meta;`);
}

/** SQLite's answers that say the file is not (or no longer) a database of ours. */
const UNREADABLE = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_INDEX', 'SQLITE_CORRUPT_SEQUENCE']);

export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && UNREADABLE.has(code);
}

/** Another program's SQLite file: tables, but not our meta. */
function isForeign(db: Database.Database): boolean {
  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
  if (tables.length === 0) return false;
  if (!tables.includes('meta')) return true;
  const version = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get();
  return version === undefined && tables.some((t) => t !== 'meta');
}

export interface OpenedStore {
  db: Database.Database;
  /** True when the store starts empty (new file, rebuilt, or moved aside). */
  rebuilt: boolean;
  /** Where an unreadable file was moved, when it was. */
  movedTo?: string;
}

/**
 * Opens the store's file for writing: WAL, the schema of this version. A
 * file that is not a readable database of ours (corrupt, truncated, another
 * program's) is moved aside with its WAL and a new one is rebuilt from the
 * topic; the caller says so, naming RUNS_DB_PATH.
 */
export function openWritable(path: string, topic: string, options: { cacheMb: number; mmapMb: number }): OpenedStore {
  let movedTo: string | undefined;
  for (let attempt = 0; ; attempt++) {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      // WAL with NORMAL is durable across process crashes (kill -9); only a
      // power loss can roll back the last transactions, and those are
      // re-applied from the topic because their offsets roll back with them.
      db.pragma('synchronous = NORMAL');
      // The writer is alone in its thread: it may wait for another process's lock.
      db.pragma('busy_timeout = 5000');
      db.pragma(`cache_size = -${options.cacheMb * 1024}`);
      if (options.mmapMb > 0) db.pragma(`mmap_size = ${options.mmapMb * 1024 * 1024}`);
      // Checkpoints run between transactions (see RunWriter), not inside a commit.
      db.pragma('wal_autocheckpoint = 0');
      if (isForeign(db)) throw Object.assign(new Error('the file holds another program\'s tables'), { code: 'SQLITE_NOTADB' });
      db.pragma('quick_check(1)', { simple: true });
      const rebuilt = migrate(db, topic);
      return { db, rebuilt: rebuilt || movedTo !== undefined, ...(movedTo ? { movedTo } : {}) };
    } catch (err) {
      db?.close();
      if (!isCorruption(err) || attempt > 0 || path === ':memory:') throw err;
      movedTo = moveAside(path);
    }
  }
}

/** Moves a database file and its WAL and shared-memory files out of the way. */
export function moveAside(path: string): string {
  const to = `${path}.unreadable-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, to + suffix);
  return to;
}

/**
 * A read-only connection beside the writer. It never waits for a lock
 * (WAL readers need none), so a busy writer or another process sharing the
 * file cannot hold up the thread that reads.
 */
export function openReadOnly(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 0');
  return db;
}

/** The columns of a run's state row and of its details row, as the code names them. */
export const STATE_COLUMNS = `key, id, org_id AS orgId, action, status, status_label AS statusLabel, summary, links,
  external_run_id AS externalRunId, invocation_type AS invocationType, blueprint, entity_identifier AS entityIdentifier,
  user_id AS userId, user_email AS userEmail, origin, trigger_partition AS triggerPartition, has_agent_payload AS hasAgentPayload,
  claim_by AS claimBy, claim_until AS claimUntil, claim_acked AS claimAcked, approval_type AS approvalType, approvers,
  approval_state AS approvalState, approval_by AS approvalBy, approval_description AS approvalDescription,
  approval_decided_at AS approvalDecidedAt, released_at AS releasedAt, released_nudge AS releasedNudge, repeats, resent_from AS resentFrom,
  call_started_at AS callStartedAt, call_ended_at AS callEndedAt,
  created_by AS createdBy, updated_by AS updatedBy, created_at AS createdAt, updated_at AS updatedAt, ended_at AS endedAt`;

export const DETAIL_COLUMNS = `entity, properties, action_trigger AS actionTrigger, invocation, agent_payload AS agentPayload, response, parked`;

/** What an update leaves in its run's timeline, applied or not. */
export interface TimelineFields {
  partition: number;
  status: string;
  source: string;
  actor: string | null;
  statusLabel: string | null;
  summary: string | null;
  log: string | null;
  at: number;
}
