import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';

/** Where the Avro schemas live: `schemas/` at the package root. */
export const SCHEMAS_DIR = join(__dirname, '..', '..', 'schemas');

export function readSchema(file: string): avro.Schema {
  return JSON.parse(readFileSync(join(SCHEMAS_DIR, file), 'utf8')) as avro.Schema;
}

export const actionRunSchema = readSchema('action-run.avsc');
export const statusUpdateSchema = readSchema('run-status-update.avsc');

// Unions of null and one type are written as plain values (no {"string": ...}
// wrapping), which is what JSON producers and consumers expect.
export const actionRunType = avro.Type.forSchema(actionRunSchema, { wrapUnions: false });
export const statusUpdateType = avro.Type.forSchema(statusUpdateSchema, { wrapUnions: false });

/**
 * Validates `value` against `type` and returns one readable line per
 * problem, each naming the field path (`invocationMethod.type: expected
 * string, got 42`). An empty list means valid.
 */
export function avroProblems(type: avro.Type, value: unknown): string[] {
  // The plain check is much cheaper than one that tracks paths: take the
  // slow road only to explain a failure.
  if (type.isValid(value)) return [];
  const problems: string[] = [];
  type.isValid(value, {
    errorHook(path: string[], got: unknown, expected: avro.Type) {
      const where = path.length ? path.join('.') : '(root)';
      const what = got === undefined ? 'missing' : `got ${JSON.stringify(got)?.slice(0, 80)}`;
      problems.push(`${where}: expected ${describeType(expected)}, ${what}`);
    },
  });
  return problems;
}

function describeType(type: avro.Type): string {
  const name = type.typeName;
  if (name === 'union:unwrapped' || name === 'union:wrapped') {
    const types = (type as unknown as { types: avro.Type[] }).types;
    return types.map(describeType).join(' or ');
  }
  if (name === 'record') return 'a record';
  if (name === 'array') return 'an array';
  return name;
}
