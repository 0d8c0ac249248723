import { JsonLike, JsonMap, member, parseLossless, pythonJson } from '../model/lossless-json';
import { CENSORED } from '../status/run-info';

/** How the store's copy of a dead letter's value relates to the topic's. */
export const LetterCopy = {
  /** As on the topic: nothing in it is known to be secret. */
  ASIS: 0,
  /** Censored inputs and invocation headers and body masked, as the run page shows them. */
  MASKED: 1,
  /** Not kept: it may hold secrets the store cannot find (binary with censored inputs, JSON it cannot read). */
  WITHHELD: 2,
} as const;
export type LetterCopy = (typeof LetterCopy)[keyof typeof LetterCopy];

/** Kafka header names whose values are credentials (as the log's redaction reads them). */
const SECRET_HEADER = /authorization|cookie|token|secret|password|passwd|api[-_]?key|signature|credential/i;

/**
 * What the store keeps of a dead letter's value. A JSON event (Port's run
 * message or the router's own form) is kept with its censored inputs and
 * its invocation method's headers and body masked, as the run page masks
 * them. A value the store cannot read as JSON is kept as it is unless the
 * router said it carries secrets (`x-dlq-sensitive`) or it names censored
 * inputs; then it is withheld. The dead-letter topic keeps the original
 * bytes either way.
 */
export function maskLetterValue(value: Buffer, sensitive: boolean): { value: Buffer | null; copy: LetterCopy } {
  const text = value.toString('utf8');
  let parsed: JsonLike;
  try {
    parsed = parseLossless(text);
  } catch {
    const unsafe = sensitive || text.includes('censoredProperties');
    return unsafe ? { value: null, copy: LetterCopy.WITHHELD } : { value, copy: LetterCopy.ASIS };
  }
  if (!(parsed instanceof JsonMap)) return { value, copy: LetterCopy.ASIS };
  let changed = false;
  // Port's run message keeps them under payload; the router's own form at the top.
  for (const holder of [member(parsed, 'payload'), parsed]) {
    if (holder instanceof JsonMap) changed = maskRun(holder) || changed;
  }
  // Port's message has the invocation method under payload.action.
  const action = member(member(parsed, 'payload'), 'action');
  if (action instanceof JsonMap) changed = maskInvocation(action) || changed;
  if (!changed) return { value, copy: LetterCopy.ASIS };
  try {
    return { value: Buffer.from(pythonJson(parsed), 'utf8'), copy: LetterCopy.MASKED };
  } catch {
    // Too deep to write back (the parser is iterative, the writer is not): keep nothing rather than the secrets.
    return { value: null, copy: LetterCopy.WITHHELD };
  }
}

/** Masks `properties` named in `censoredProperties`, and the invocation method held here. */
function maskRun(holder: JsonMap): boolean {
  let changed = false;
  const names = member(holder, 'censoredProperties');
  if (Array.isArray(names)) {
    changed = inPlace(holder, 'properties', (properties) => {
      let masked = false;
      for (const name of names) {
        if (typeof name === 'string' && properties.entries.has(name) && properties.entries.get(name) !== CENSORED) {
          properties.entries.set(name, CENSORED);
          masked = true;
        }
      }
      return masked;
    });
  }
  return maskInvocation(holder) || changed;
}

/** An `invocationMethod` (and its `settings`, the router's form) with header values and a body masked. */
function maskInvocation(holder: JsonMap): boolean {
  return inPlace(holder, 'invocationMethod', (method) => {
    const here = maskHeadersAndBody(method);
    return inPlace(method, 'settings', maskHeadersAndBody) || here;
  });
}

function maskHeadersAndBody(where: JsonMap): boolean {
  let changed = false;
  const headers = member(where, 'headers');
  if (headers instanceof JsonMap && [...headers.entries.values()].some((v) => v !== '[redacted]')) {
    for (const k of headers.entries.keys()) headers.entries.set(k, '[redacted]');
    changed = true;
  }
  if (where.entries.has('body') && where.entries.get('body') !== '[redacted]') {
    where.entries.set('body', '[redacted]');
    changed = true;
  }
  return changed;
}

/**
 * Runs `mask` on the object at `key`, given as an object or, as the
 * router's form allows free-form fields, as JSON text (written back as
 * text). A text that is no JSON object cannot be looked into: it is
 * masked whole.
 */
function inPlace(holder: JsonMap, key: string, mask: (m: JsonMap) => boolean): boolean {
  const value = holder.entries.get(key);
  if (value instanceof JsonMap) return mask(value);
  if (typeof value !== 'string') return false;
  let inner: JsonLike;
  try {
    inner = parseLossless(value);
  } catch {
    inner = null;
  }
  if (!(inner instanceof JsonMap)) {
    holder.entries.set(key, CENSORED);
    return true;
  }
  if (!mask(inner)) return false;
  holder.entries.set(key, pythonJson(inner));
  return true;
}

/** A dead letter's Kafka headers for the store: credential-like ones masked. */
export function maskLetterHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, !k.startsWith('x-dlq-') && SECRET_HEADER.test(k) ? '[redacted]' : v]));
}
