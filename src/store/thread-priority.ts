import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the CPU priority of the calling thread alone (Linux: a thread is
 * a task with its own nice value; /proc/thread-self names it). Elsewhere,
 * or when refused, nothing changes. Returns whether it took effect.
 */
export function lowerThisThread(nice: number): boolean {
  const tid = thisThreadId();
  if (tid === null) return false;
  try {
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}

/** The calling thread's kernel id (Linux), or null elsewhere. */
export function thisThreadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/** This thread's kernel id and nice value, where the system says (Linux). */
export function threadInfo(): { tid: number | null; nice: number | null } {
  const tid = thisThreadId();
  try {
    return { tid, nice: tid === null ? null : getPriority(tid) };
  } catch {
    return { tid, nice: null };
  }
}
