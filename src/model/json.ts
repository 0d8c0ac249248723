/** A JSON value as JSON.parse returns it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * How deep arrays and objects may nest in any JSON the service reads
 * (events, status updates, request bodies, a backend's answer). Port's
 * payloads nest a handful of levels; past this, what is read is refused
 * before anything walks it recursively (a stack overflow otherwise).
 */
export const MAX_JSON_DEPTH = 64;

/** True when arrays and objects in JSON `text` nest deeper than `max` (one pass, strings skipped). */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

/** The refusal every reader gives for `jsonTooDeep`. */
export const TOO_DEEP = `JSON nested deeper than ${MAX_JSON_DEPTH} levels`;

/** Freezes a value and everything reachable from it. */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

/** A stored JSON text as its value, or `fallback` when it is null or not JSON. */
export function parsedJson<T extends Json>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}
