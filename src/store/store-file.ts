import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { describeError } from '../errors';
import type { Logger } from '../log';
import { isCorruption, moveAside } from './schema';
import type { FromWriter } from './writer-protocol';

/** Waits between tries of a write the file refuses. */
const RETRY_MS = { first: 250, max: 5_000 };
/** A WAL checkpoint runs between transactions at most this often. */
const CHECKPOINT_MS = 1_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The writer thread's store file: writes tried until they succeed (a full
 * disk, a lock, an I/O error are reported and waited out, never skipped),
 * WAL checkpoints, and the file watched: corrupt, deleted or replaced, it
 * is given up and rebuilt from the topics by the next thread.
 */
export class StoreFile {
  private failing: string | null = null;
  private readonly fileId: string;
  private lastCheckpoint = Date.now();

  constructor(
    private readonly path: string,
    private readonly db: Database.Database,
    private readonly logger: Logger,
    private readonly post: (m: FromWriter) => void,
    private readonly stopping: () => boolean,
  ) {
    this.fileId = fileIdOf(path);
  }

  /**
   * Runs a write until it succeeds: a full disk, a lock held too long or an
   * I/O error is reported (readiness turns false) and tried again, never
   * skipped. A corrupt file ends the thread: it is moved aside and rebuilt.
   * Undefined when the thread stops first.
   */
  async retrying<T>(write: () => T, heartbeats: (() => Promise<void>)[]): Promise<T | undefined> {
    let wait = RETRY_MS.first;
    for (;;) {
      try {
        const result = write();
        if (this.failing !== null) {
          this.logger.info({ was: this.failing }, 'run store applying again');
          this.failing = null;
          this.post({ type: 'recovered' });
        }
        return result;
      } catch (err) {
        if (isCorruption(err)) this.rebuild(`the store file is unreadable: ${describeError(err)}`);
        const reason = describeError(err);
        if (this.failing !== reason) {
          this.logger.error({ err: reason, code: (err as { code?: string }).code, RUNS_DB_PATH: this.path }, 'the run store cannot apply; retrying');
          this.failing = reason;
          this.post({ type: 'failing', reason });
        }
        if (this.stopping()) return undefined;
        await sleep(wait);
        wait = Math.min(RETRY_MS.max, wait * 2);
        await Promise.all(heartbeats.map((h) => h().catch(() => undefined)));
        if (this.stopping()) return undefined;
      }
    }
  }

  /** A passive WAL checkpoint, at most once a CHECKPOINT_MS. */
  checkpoint(): void {
    const now = Date.now();
    if (now - this.lastCheckpoint < CHECKPOINT_MS) return;
    this.lastCheckpoint = now;
    try {
      // PASSIVE: never waits for readers, never holds up the next transaction for long.
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'run store checkpoint failed');
    }
  }

  /** A file deleted or replaced under the store: start again on a new one. */
  checkFile(): void {
    if (this.stopping()) return;
    const now = fileIdOf(this.path);
    if (now !== this.fileId) this.rebuild(now === '' ? 'the store file was deleted' : 'the store file was replaced');
  }

  /** Ends the thread on a file it cannot use: moved aside (when it is still ours) and rebuilt by the next thread. */
  rebuild(reason: string): never {
    this.logger.error({ RUNS_DB_PATH: this.path, reason }, 'the run store file cannot be used: rebuilding it from the status topic');
    try {
      this.db.close();
    } catch {
      /* already unusable */
    }
    let movedTo: string | undefined;
    if (fileIdOf(this.path) === this.fileId && this.fileId !== '') movedTo = moveAside(this.path);
    this.post({ type: 'rebuild', reason: movedTo ? `${reason} (moved to ${movedTo})` : reason });
    process.exit(1);
  }
}

/** The file's identity (device and inode), or '' when it does not exist. */
export function fileIdOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return '';
  }
}
