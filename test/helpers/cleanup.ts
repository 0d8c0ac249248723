import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * What a test file leaves behind, removed after its last test
 * (test/helpers/setup.ts): temporary folders and files, and the topics and
 * groups of every testTopics() it made.
 */

const paths: string[] = [];

/** A new temporary folder, removed after the test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  paths.push(dir);
  return dir;
}

/** Removes `path` (a file or a folder) after the test file. */
export function removeLater(...more: string[]): void {
  paths.push(...more);
}

export function removeTemporaries(): void {
  for (const path of paths.splice(0)) rmSync(path, { recursive: true, force: true });
}
