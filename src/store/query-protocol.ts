import type { DeadLetterFilter } from './dead-letters';
import type { Cursor, RunFilter } from './queries';

/** How the API shows the runs of a page (`version`, `exclude`). */
export interface ListView {
  v1: boolean;
  exclude?: string[];
}

/** A query for the query thread. */
export type QueryRequest = { id: number } & (
  | { name: 'listRuns'; filter: RunFilter; page: { limit: number; offset?: number; cursor?: Cursor } }
  /** A page as the API answers it, serialised in the thread: `{"ok":true,"runs":[…],"next":…}`. */
  | { name: 'listRunsJson'; filter: RunFilter; page: { limit: number; offset?: number; cursor?: Cursor }; view: ListView }
  | { name: 'countRuns'; filter: RunFilter }
  | { name: 'overview'; orgId: string | undefined; now: number; minutes: number }
  | { name: 'deadLetters'; filter: DeadLetterFilter }
  | { name: 'deadLetterReasons'; orgId: string | undefined }
  | { name: 'reopen' }
);

export type QueryResponse = { id: number } & ({ ok: true; value: unknown } | { ok: false; message: string; code?: string });
