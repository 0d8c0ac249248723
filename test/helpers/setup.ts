import { removeTemporaries } from './cleanup';
import { deleteTestTopics } from './kafka';

// What keeps the process alive when a file starts. Jest runs the files in
// one process (maxWorkers 1): a server, socket or timer a file leaves behind
// keeps Jest from exiting after the last file, so each file's leftovers are
// named here, against the file that left them.
const before = count(process.getActiveResourcesInfo());

// Every test file: its topics, groups and temporary files go once its tests are done.
afterAll(async () => {
  await deleteTestTopics();
  removeTemporaries();
  await new Promise((r) => setTimeout(r, 200).unref());
  const after = count(process.getActiveResourcesInfo());
  // Sockets, servers, handles: timers are left out (Node does not say which file armed one, and one still
  // pending from a client closed earlier ends on its own; forceExit covers a forgotten interval).
  const left = [...after]
    .filter(([kind, n]) => kind !== 'Timeout' && kind !== 'Immediate' && n > (before.get(kind) ?? 0))
    .map(([kind, n]) => `${kind} ×${n - (before.get(kind) ?? 0)}`);
  if (left.length > 0) process.stderr.write(`[leak] ${expect.getState().testPath}: still alive after its tests: ${left.join(', ')}\n`);
}, 30_000);

function count(kinds: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of kinds) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}
