import type { DeadLetterFilter } from './dead-letters';
import type { Cursor, RunFilter } from './queries';

/** A query for the query thread. */
export type QueryRequest = { id: number } & (
  | { name: 'listRuns'; filter: RunFilter; page: { limit: number; offset?: number; cursor?: Cursor } }
  | { name: 'countRuns'; filter: RunFilter }
  | { name: 'overview'; orgId: string | undefined; now: number; minutes: number }
  | { name: 'deadLetters'; filter: DeadLetterFilter }
  | { name: 'deadLetterReasons'; orgId: string | undefined }
  | { name: 'reopen' }
);

export type QueryResponse = { id: number } & ({ ok: true; value: unknown } | { ok: false; message: string; code?: string });
