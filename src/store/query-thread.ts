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
import { runView } from './run-view';
import { lowerThisThread } from './thread-priority';

let db: Database.Database | null = null;
let letters: DeadLetterStore | null = null;
const { path, dlqTopic, titles } = workerData as { path: string; dlqTopic: string; titles: Record<string, string> };
const actionTitle = (id: string) => titles[id] ?? null;

// Routing comes first: lists and searches get the CPU routing leaves (nice 19 on this thread only).
lowerThisThread(19);

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
    case 'listRunsJson': {
      // The page's views and their JSON are built here: a 1,000-run page is tens of milliseconds of work.
      const page = listRuns(c.db, q.filter, q.page);
      const options = { v1: q.view.v1, exclude: q.view.exclude, actionTitle };
      // As bytes, handed over without a copy: the routing thread only writes them to the socket.
      return Buffer.from(JSON.stringify({ ok: true, runs: page.rows.map((r) => runView(r, options)), next: page.next }), 'utf8');
    }
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
  const value = response.ok ? response.value : null;
  // A Buffer from Buffer.from(string) may share a pooled ArrayBuffer: only a buffer of its own is transferred.
  const own = value instanceof Uint8Array && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
  parentPort!.postMessage(response, own ? [value.buffer as ArrayBuffer] : []);
});
