import { ErrorCodes, RouterError } from '../errors';
/**
 * JSON as Python's `json.loads` + `json.dumps(separators=(",", ":"),
 * ensure_ascii=False)` sees it: what Port's agent recomputes before it
 * checks a run's signature. Two things JSON.parse + JSON.stringify change
 * and Python does not: numbers (JavaScript rounds integers past 2^53 and
 * writes floats its own way: `0.00005` where Python writes `5e-05`) and the
 * order of integer-like keys (JavaScript puts them first). A producer's
 * free-form values (user inputs, the entity) go through this instead, so
 * they reach backends unchanged and every message the router signs is one
 * Python re-serialises byte for byte.
 */

/** A JSON number, kept as the text Python writes for it. */
export class JsonNumber {
  constructor(readonly text: string) {}
  toJSON(): number {
    return Number(this.text);
  }
}

/** A JSON object in its key order (a duplicate key keeps its first place and its last value, as in Python). */
export class JsonMap {
  readonly entries = new Map<string, JsonLike>();
}

export type Lossless = null | boolean | string | JsonNumber | JsonMap | Lossless[];

/** A value JSON.parse gives, a lossless one, or a mix (a plain object holding lossless parts). */
export type JsonLike = null | boolean | number | string | JsonNumber | JsonMap | JsonLike[] | { [key: string]: JsonLike };

/** A string holds a UTF-16 surrogate that is not part of a pair (Python cannot encode it). */
export class LoneSurrogateError extends RouterError {
  constructor(where: number) {
    super(ErrorCodes.INVALID_UNICODE, `a lone UTF-16 surrogate (at character ${where}) cannot be encoded as UTF-8`);
    this.name = 'LoneSurrogateError';
  }
}

/**
 * Python's `repr` of the float `x`: the shortest digits that round-trip
 * (as JavaScript's), in fixed notation when the decimal exponent is in
 * [-4, 16), else in exponent notation with a sign and at least two digits.
 */
export function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa, exp] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const e = Number(exp);
  if (e < -4 || e >= 16) {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const abs = Math.abs(e);
    return `${sign}${digits[0]}${rest}e${e < 0 ? '-' : '+'}${abs < 10 ? `0${abs}` : abs}`;
  }
  const point = e + 1;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** The text Python writes for a JSON number token: integers exactly, floats by `repr`. */
export function pythonNumber(token: string): string {
  if (/^-?\d+$/.test(token)) {
    const n = token.replace(/^(-?)0+(?=\d)/, '$1');
    return n === '-0' ? '0' : n;
  }
  return pythonFloat(Number(token));
}

/** Keys JavaScript orders before the others in a plain object. */
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;

/**
 * True when JSON.parse would change `text` in a way Python would not (see
 * above) or when it holds a lone surrogate: such text takes the lossless
 * parser. One pass, skipping over strings; false positives only cost speed.
 */
export function needsLossless(text: string): boolean {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const start = i + 1;
      let plainDigits = true;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 34) break;
        if (d === 92 /* \ */) {
          plainDigits = false;
          if (text.charCodeAt(i + 1) === 117 /* u */ && /^[dD][89a-fA-F]/.test(text.slice(i + 2, i + 4))) return true;
          i++;
        } else if (d < 48 || d > 57) plainDigits = false;
      }
      // An integer-like object key: JavaScript would reorder it.
      if (plainDigits && i > start && ARRAY_INDEX.test(text.slice(start, i))) {
        let j = i + 1;
        while (j < n && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 10 || text.charCodeAt(j) === 13 || text.charCodeAt(j) === 9)) j++;
        if (text.charCodeAt(j) === 58 /* : */) return true;
      }
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let digits = 0;
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d >= 48 && d <= 57) digits++;
        else if (d === 46 || d === 101 || d === 69) return true; // . e E: a float
        else if (d !== 45) break;
      }
      if (digits >= 16) return true;
      i--;
    }
  }
  return false;
}

/** Parses JSON text keeping numbers as Python writes them and keys in order. Throws SyntaxError or LoneSurrogateError. */
export function parseLossless(text: string): Lossless {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const ws = () => {
    for (let c = text.charCodeAt(i); c === 32 || c === 10 || c === 13 || c === 9; c = text.charCodeAt(++i));
  };
  const string = (): string => {
    const start = ++i;
    let out = '';
    let from = start;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 34) break;
      if (c < 32) fail('control character in string');
      if (c === 92) {
        out += text.slice(from, i);
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (e !== undefined && e in simple) {
          out += simple[e];
          i += 2;
        } else fail('bad escape');
        from = i;
        continue;
      }
      i++;
    }
    out += text.slice(from, i);
    i++;
    checkSurrogates(out, start);
    return out;
  };
  const value = (depth: number): Lossless => {
    if (depth > 512) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      const map = new JsonMap();
      i++;
      ws();
      if (text[i] === '}') return i++, map;
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        ws();
        if (text[i++] !== ':') fail("expected ':'");
        map.entries.set(key, value(depth + 1));
        ws();
        const next = text[i++];
        if (next === '}') return map;
        if (next !== ',') fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      const list: Lossless[] = [];
      i++;
      ws();
      if (text[i] === ']') return i++, list;
      for (;;) {
        list.push(value(depth + 1));
        ws();
        const next = text[i++];
        if (next === ']') return list;
        if (next !== ',') fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 1100));
    if (m && m[0]) {
      i += m[0].length;
      return new JsonNumber(pythonNumber(m[0]));
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail('unexpected token');
  };
  const result = value(0);
  ws();
  if (i < text.length) fail('unexpected text after the value');
  return result;
}

function checkSurrogates(s: string, at: number): void {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = s.charCodeAt(k + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) k++;
    else throw new LoneSurrogateError(at + k);
  }
}

/** What JSON.parse would have given (numbers as doubles, keys in JavaScript's order). */
export function toPlain(value: JsonLike): unknown {
  if (value instanceof JsonNumber) return Number(value.text);
  if (value instanceof JsonMap) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value.entries) out[k] = toPlain(v);
    return out;
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

/** A member of an object (lossless or plain), or undefined. */
export function member(value: unknown, key: string): unknown {
  if (value instanceof JsonMap) return value.entries.get(key);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof JsonNumber)) {
    return (value as Record<string, unknown>)[key];
  }
  return undefined;
}

/**
 * Compact JSON exactly as Python's `json.dumps(v, separators=(",", ":"),
 * ensure_ascii=False)` writes the value (string escapes are the same as
 * JSON.stringify's; numbers and key order are Python's).
 */
export function pythonJson(value: JsonLike | undefined): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 1e16 ? String(value) : pythonFloat(value);
  if (value instanceof JsonNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(',')}]`;
  const parts: string[] = [];
  const entries = value instanceof JsonMap ? value.entries : Object.entries(value);
  for (const [k, v] of entries) if (v !== undefined) parts.push(`${JSON.stringify(k)}:${pythonJson(v)}`);
  return `{${parts.join(',')}}`;
}

/**
 * What Python's `json.dumps(v)` writes with `ensure_ascii` left on (every
 * character past ASCII as `\uXXXX`): with `compact`, the separators
 * `(",", ":")`, else Python's default `", "` and `": "`. This is how
 * Port's agent signs a request body (compact) and how `requests` sends it.
 */
export function pythonAsciiJson(value: JsonLike | undefined, compact: boolean): string {
  const comma = compact ? ',' : ', ';
  const colon = compact ? ':' : ': ';
  const str = (s: string) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const write = (v: JsonLike | undefined): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'string') return str(v);
    // Python reads a number with a point or an exponent as a float, and writes it as repr does.
    if (v instanceof JsonNumber) return /^-?\d+$/.test(v.text) ? v.text : pythonFloat(Number(v.text));
    if (typeof v === 'boolean' || typeof v === 'number') return pythonJson(v);
    if (Array.isArray(v)) return `[${v.map(write).join(comma)}]`;
    const entries = v instanceof JsonMap ? [...v.entries] : Object.entries(v);
    return `{${entries.filter(([, x]) => x !== undefined).map(([k, x]) => `${str(k)}${colon}${write(x)}`).join(comma)}}`;
  };
  return write(value);
}
