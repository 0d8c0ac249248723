/**
 * The query thread: the store's list queries (pages, counts, search, the
 * overview, dead letters) on a read-only connection of its own, so that
 * no query a signed-in client can send runs on the routing thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { DeadLetterStore } from './dead-letters';
import { LIMITS, countRuns, listRuns, overview } from './queries';
import { openReadOnly } from './schema';
import type { QueryRequest, QueryResponse } from './query-protocol';

let db: Database.Database | null = null;
let letters: DeadLetterStore | null = null;
const { path, dlqTopic } = workerData as { path: string; dlqTopic: string };

function connection(): { db: Database.Database; letters: DeadLetterStore } {
  if (!db || !letters) {
    db = openReadOnly(path);
    letters = new DeadLetterStore(db, dlqTopic);
  }
  return { db, letters };
}

function answer(q: QueryRequest): unknown {
  if (q.name === 'reopen') {
    db?.close();
    db = null;
    letters = null;
    return null;
  }
  const c = connection();
  switch (q.name) {
    case 'listRuns':
      return listRuns(c.db, q.filter, q.page);
    case 'countRuns':
      return countRuns(c.db, q.filter);
    case 'overview':
      return overview(c.db, q.orgId, q.now, q.minutes);
    case 'deadLetters':
      return c.letters.list(q.filter);
    case 'deadLetterReasons':
      return c.letters.countsByReason({ orgId: q.orgId }, LIMITS.deadLetterCountCap);
  }
}

parentPort?.on('message', (q: QueryRequest) => {
  let response: QueryResponse;
  try {
    response = { id: q.id, ok: true, value: answer(q) };
  } catch (err) {
    response = { id: q.id, ok: false, message: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code };
  }
  parentPort!.postMessage(response);
});
