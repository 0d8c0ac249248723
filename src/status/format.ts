import type { RunStatusUpdate } from '../model/status';

/** One readable line per update, for `tail` and the demo. */
export function formatStatusLine(u: RunStatusUpdate): string {
  const time = new Date(u.at).toISOString().slice(11, 23);
  const parts = [time, u.runId.padEnd(14), u.status.padEnd(11), `[${u.invocationType ?? '-'}]`];
  if (u.statusLabel) parts.push(`(${u.statusLabel})`);
  const text = u.summary ?? u.log;
  if (text) parts.push(text);
  if (u.links?.length) parts.push(`-> ${u.links.join(' ')}`);
  return parts.join(' ');
}
