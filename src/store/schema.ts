import type Database from 'better-sqlite3';

/**
 * The run store's tables. `offsets` holds, per status-topic partition, the
 * next offset to apply; it is written in the same transaction as the rows
 * an update produced, so a crash never applies an update twice or skips one.
 * Bump SCHEMA_VERSION with every change: a store of another version is
 * rebuilt from the topic (the topic is the log of record).
 */
export const SCHEMA_VERSION = 3;

const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (
  partition INTEGER PRIMARY KEY,
  next_offset TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  org_id TEXT,
  action TEXT,
  status TEXT NOT NULL,
  status_label TEXT,
  summary TEXT,
  links TEXT NOT NULL DEFAULT '[]',
  external_run_id TEXT,
  invocation_type TEXT,
  response TEXT,
  blueprint TEXT,
  entity_identifier TEXT,
  entity TEXT,
  properties TEXT,
  user_id TEXT,
  user_email TEXT,
  origin TEXT,
  action_trigger TEXT,
  invocation TEXT,
  trigger_partition INTEGER,
  agent_payload TEXT,
  claim_by TEXT,
  claim_until INTEGER,
  claim_acked INTEGER NOT NULL DEFAULT 0,
  approval_type TEXT,
  approvers TEXT,
  approval_state TEXT,
  parked TEXT,
  approval_by TEXT,
  approval_description TEXT,
  approval_decided_at INTEGER,
  released_at INTEGER,
  released_nudge TEXT,
  created_by TEXT,
  updated_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC);
CREATE INDEX IF NOT EXISTS runs_org_created ON runs (org_id, created_at DESC);
CREATE INDEX IF NOT EXISTS runs_external ON runs (external_run_id) WHERE external_run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_entity ON runs (entity_identifier) WHERE entity_identifier IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_active ON runs (invocation_type) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_agent_pending ON runs (org_id) WHERE ended_at IS NULL AND agent_payload IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_approval ON runs (approval_state) WHERE approval_state IN ('WAITING', 'APPROVED');
CREATE TABLE IF NOT EXISTS run_approvals (
  run_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  decision TEXT NOT NULL,
  description TEXT,
  at INTEGER NOT NULL,
  PRIMARY KEY (run_id, client_id)
);
CREATE TABLE IF NOT EXISTS run_logs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  message TEXT NOT NULL,
  created_by TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_logs_run ON run_logs (run_id, seq);
CREATE TABLE IF NOT EXISTS run_updates (
  seq INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS run_updates_run ON run_updates (run_id, seq);
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
  UNIQUE (partition, offset)
);
CREATE INDEX IF NOT EXISTS dead_letters_org ON dead_letters (org_id, seq);
CREATE TABLE IF NOT EXISTS dlq_offsets (
  partition INTEGER PRIMARY KEY,
  next_offset TEXT NOT NULL
);
`;

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
  db.exec('DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS run_logs; DROP TABLE IF EXISTS run_updates; DROP TABLE IF EXISTS run_approvals; DROP TABLE IF EXISTS offsets; DROP TABLE IF EXISTS dead_letters; DROP TABLE IF EXISTS dlq_offsets; DELETE FROM meta;');
}
