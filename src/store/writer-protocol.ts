import type { Config } from '../config/config';
import type { ApplyResult } from './run-writer';

/** What the writer thread is started with (structured-cloned into it). */
export interface WriterData {
  config: Config;
  path: string;
  logLevel: string;
  /** A transaction takes at most this many records, or what came within `maxWaitMs`. */
  maxUpdates: number;
  maxWaitMs: number;
  cacheMb: number;
  mmapMb: number;
  /** The thread's nice value (RUNS_WRITER_NICE); 0 leaves it as the process's. */
  nice: number;
}

/** Messages from the writer thread to the routing thread. */
export type FromWriter =
  | { type: 'opened'; rebuilt: boolean; movedTo?: string; runs: number }
  /** Consuming; [partition, next offset, high watermark] where the store stands. */
  | { type: 'started'; positions: [number, string, string][]; thread: { tid: number | null; nice: number | null } }
  | { type: 'caught-up' }
  | {
      type: 'applied';
      runIds: string[];
      /** The org of each run of `runIds`: the live feed tells each org only of its own. */
      orgIds: (string | null)[];
      /** [mark, result, partition, offset] of each watched write. */
      marks: [string, ApplyResult, number, string][];
      /** [partition, next offset, high watermark] */
      positions: [number, string, string][];
      counts: Partial<Record<ApplyResult, number>>;
      seconds: number;
    }
  | { type: 'dead-letters'; orgs: (string | null)[] }
  /** Records fetched from the status topic (re-reads included; they are skipped before decoding). */
  | { type: 'fetched'; count: number }
  | { type: 'failing'; reason: string }
  | { type: 'recovered' }
  /** The file became unreadable (corrupt) or was removed: restart on a new one. */
  | { type: 'rebuild'; reason: string }
  | { type: 'stopped' };

/** Messages from the routing thread to the writer thread. */
export type ToWriter = { type: 'stop' };

/** The header an API write carries so that the writer says what applying it did. */
export const WATCH_HEADER = 'x-store-watch';
