import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');

/**
 * A worker thread's script beside the module that starts it. Under ts-jest
 * the sources run from src/, and the thread then runs from the build
 * (`npm test` builds first): `dist/` at the same relative place.
 */
export function threadScript(dir: string, name: string, what: string): string {
  const here = join(dir, `${name}.js`);
  if (existsSync(here)) return here;
  const built = join(ROOT, 'dist', relative(join(ROOT, 'src'), dir), `${name}.js`);
  if (existsSync(built)) return built;
  throw new Error(`${what}'s script is missing (${here}): run npm run build`);
}

/**
 * kafkajs arms its request queue's timer with a negative delay whenever
 * nothing is throttled; Node clamps it to 1 ms, as it always did, and
 * Node 24 also prints a TimeoutNegativeWarning each time. A worker thread
 * prints its own warnings: one that runs kafkajs drops that one, as
 * bin/action-router.js does for the main thread. Every other is printed.
 */
export function dropTimeoutNegativeWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
  });
}
