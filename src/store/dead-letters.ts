import type Database from 'better-sqlite3';
import type { KafkaMessage } from 'kafkajs';
import { LetterCopy, maskLetterHeaders, maskLetterValue } from './letter-mask';

/** What of a dead letter's value the store keeps (the console shows it, the topic has all of it). */
export const KEPT_VALUE_BYTES = 64 * 1024;

/** One message of the dead-letter topic, as the store keeps it. */
export interface DeadLetterRow {
  seq: number;
  partition: number;
  offset: string;
  reason: string | null;
  error: string | null;
  sourceTopic: string | null;
  sourcePartition: number | null;
  sourceOffset: string | null;
  runId: string | null;
  orgId: string | null;
  at: number;
  key: Buffer | null;
  value: Buffer | null;
  /** The value's size on the topic, in bytes. */
  size: number;
  /** True when the router trimmed it (x-dlq-trimmed) or the store kept only its start. */
  trimmed: number;
  headers: string;
  /** LetterCopy: the value as on the topic, masked, or withheld. */
  copy: number;
}

export interface DeadLetterFilter {
  /** Only letters of this org; undefined = all (an operator); null = none without an org. */
  orgId?: string;
  reason?: string;
  limit: number;
  /** Letters older than this seq (paging, newest first). */
  before?: number;
}

const COLUMNS = `seq, partition, offset, reason, error, source_topic AS sourceTopic, source_partition AS sourcePartition,
  source_offset AS sourceOffset, run_id AS runId, org_id AS orgId, at, key, value, size, trimmed, headers, copy`;

/** One of a stored letter's headers (as kept: values cut at 2,048 characters, secrets masked). */
export function storedHeader(d: Pick<DeadLetterRow, 'headers'>, name: string): string | null {
  try {
    const headers: unknown = JSON.parse(d.headers);
    const v = headers && typeof headers === 'object' ? (headers as Record<string, unknown>)[name] : undefined;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** True when the dead-letter topic itself holds only the first bytes (the router trimmed it): it cannot be re-sent. */
export function cutOnTopic(d: Pick<DeadLetterRow, 'headers'>): boolean {
  return storedHeader(d, 'x-dlq-trimmed') === 'true';
}

function header(m: KafkaMessage, name: string): string | null {
  const v = m.headers?.[name];
  if (v === undefined || v === null) return null;
  return (Array.isArray(v) ? v[0] : v)?.toString() ?? null;
}

/**
 * The dead-letter topic, kept beside the runs (same SQLite file) for the
 * console: reason, error, source position, run and org (from the router's
 * `x-dlq-run-id` / `x-dlq-org-id` headers), and the first 64 KiB of the
 * message. Written only by the store's writer thread, with its offsets in
 * the same transaction; the API and the console read it through a
 * read-only connection (`writable` false).
 */
export class DeadLetterStore {
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    readonly topic: string,
    writable = false,
  ) {
    const stored = (db.prepare("SELECT value FROM meta WHERE key = 'dlq_topic'").get() as { value: string } | undefined)?.value;
    if (writable && stored !== topic) {
      this.reset();
      db.prepare("INSERT INTO meta (key, value) VALUES ('dlq_topic', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(topic);
    }
    this.stmts = {
      insert: db.prepare(`INSERT OR IGNORE INTO dead_letters (partition, offset, reason, error, source_topic, source_partition,
        source_offset, run_id, org_id, at, key, value, size, trimmed, headers, copy)
        VALUES (@partition, @offset, @reason, @error, @sourceTopic, @sourcePartition, @sourceOffset, @runId, @orgId, @at,
        @key, @value, @size, @trimmed, @headers, @copy)`),
      offset: db.prepare(
        'INSERT INTO dlq_offsets (partition, next_offset) VALUES (?, ?) ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset',
      ),
      offsets: db.prepare<[], { partition: number; next_offset: string }>('SELECT partition, next_offset FROM dlq_offsets'),
      get: db.prepare<[number], DeadLetterRow>(`SELECT ${COLUMNS} FROM dead_letters WHERE seq = ?`),
      at: db.prepare<[number, string], DeadLetterRow>(`SELECT ${COLUMNS} FROM dead_letters WHERE partition = ? AND offset = ?`),
    };
  }

  offsets(): Map<number, bigint> {
    return new Map(this.stmts.offsets.all().map((r) => [r.partition, BigInt(r.next_offset)]));
  }

  /**
   * Stores one partition's messages and its next offset in one transaction;
   * replays change nothing. Returns the org (or null) of each letter added.
   */
  apply(partition: number, messages: readonly KafkaMessage[]): (string | null)[] {
    const added: (string | null)[] = [];
    this.db.transaction(() => {
      for (const m of messages) {
        // What the console may show: masked as the run page masks (the topic keeps the original bytes).
        const kept = m.value ? maskLetterValue(m.value, header(m, 'x-dlq-sensitive') === 'true') : { value: null, copy: LetterCopy.ASIS };
        const value = kept.value;
        const at = Date.parse(header(m, 'x-dlq-at') ?? '');
        const sourcePartition = Number(header(m, 'x-dlq-source-partition'));
        const orgId = header(m, 'x-dlq-org-id');
        const inserted = this.stmts.insert.run({
          partition,
          offset: m.offset,
          reason: header(m, 'x-dlq-reason'),
          error: header(m, 'x-dlq-error'),
          sourceTopic: header(m, 'x-dlq-source-topic'),
          sourcePartition: Number.isInteger(sourcePartition) && header(m, 'x-dlq-source-partition') !== null ? sourcePartition : null,
          sourceOffset: header(m, 'x-dlq-source-offset'),
          runId: header(m, 'x-dlq-run-id'),
          orgId,
          at: Number.isFinite(at) ? at : Number(m.timestamp),
          key: m.key ? m.key.subarray(0, 1024) : null,
          value: value ? value.subarray(0, KEPT_VALUE_BYTES) : null,
          size: Number(header(m, 'x-dlq-original-size') ?? m.value?.length ?? 0),
          trimmed: header(m, 'x-dlq-trimmed') === 'true' || (value?.length ?? 0) > KEPT_VALUE_BYTES ? 1 : 0,
          headers: JSON.stringify(
            maskLetterHeaders(Object.fromEntries(Object.keys(m.headers ?? {}).map((k) => [k, (header(m, k) ?? '').slice(0, 2048)]))),
          ),
          copy: kept.copy,
        }).changes;
        if (inserted > 0) added.push(orgId);
      }
      const last = messages[messages.length - 1];
      if (last) this.stmts.offset.run(partition, String(BigInt(last.offset) + 1n));
    })();
    return added;
  }

  list(f: DeadLetterFilter): DeadLetterRow[] {
    const { where, params } = this.where(f);
    if (f.before !== undefined) {
      where.push('seq < ?');
      params.push(f.before);
    }
    return this.db
      .prepare<unknown[], DeadLetterRow>(`SELECT ${COLUMNS} FROM dead_letters ${clause(where)} ORDER BY seq DESC LIMIT ?`)
      .all(...params, f.limit);
  }

  /** Letters per reason, most first, over the newest `cap` letters. */
  countsByReason(f: Pick<DeadLetterFilter, 'orgId'>, cap: number): { reason: string; count: number }[] {
    const { where, params } = this.where(f);
    return this.db
      .prepare<unknown[], { reason: string; count: number }>(
        `SELECT COALESCE(reason, 'UNKNOWN') AS reason, COUNT(*) AS count
         FROM (SELECT reason FROM dead_letters ${clause(where)} ORDER BY seq DESC LIMIT ${Math.trunc(cap)}) GROUP BY 1 ORDER BY 2 DESC, 1`,
      )
      .all(...params);
  }

  get(seq: number): DeadLetterRow | undefined {
    return this.stmts.get.get(seq);
  }

  /** The letter at this position of the dead-letter topic. */
  at(partition: number, offset: string): DeadLetterRow | undefined {
    return this.stmts.at.get(partition, offset);
  }

  /** Forgets every letter (the dead-letter topic changed or was recreated). */
  reset(): void {
    this.db.exec('DELETE FROM dead_letters; DELETE FROM dlq_offsets;');
  }

  private where(f: Pick<DeadLetterFilter, 'orgId' | 'reason'>): { where: string[]; params: unknown[] } {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.orgId !== undefined) {
      where.push('org_id = ?');
      params.push(f.orgId);
    }
    if (f.reason !== undefined) {
      where.push('reason = ?');
      params.push(f.reason);
    }
    return { where, params };
  }
}

function clause(where: string[]): string {
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}
