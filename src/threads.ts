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
