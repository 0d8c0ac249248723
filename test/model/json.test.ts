import { MAX_JSON_DEPTH, jsonTooDeep } from '../../src/model/json';

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);
const objects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

describe('jsonTooDeep', () => {
  it('allows MAX_JSON_DEPTH levels and refuses one more, for arrays, objects and a mix', () => {
    expect(jsonTooDeep(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonTooDeep(objects(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(objects(MAX_JSON_DEPTH + 1))).toBe(true);
    const mixed = (d: number) => '[{"k":'.repeat(d / 2) + 'null' + '}]'.repeat(d / 2);
    expect(jsonTooDeep(mixed(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(mixed(MAX_JSON_DEPTH + 2))).toBe(true);
    expect(jsonTooDeep(nested(100_000))).toBe(true);
  });

  it('counts siblings as one level, not their sum', () => {
    const wide = `[${Array.from({ length: 500 }, () => nested(MAX_JSON_DEPTH - 1)).join(',')}]`;
    expect(jsonTooDeep(wide)).toBe(false);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ a: '['.repeat(1_000), b: 'say \\"[[[[\\" and "{{{{"', c: ['\\', '"['.repeat(200)] });
    expect(jsonTooDeep(text)).toBe(false);
    expect(jsonTooDeep(JSON.stringify({ k: '\\' }) + nested(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it('takes another limit', () => {
    expect(jsonTooDeep(nested(3), 2)).toBe(true);
    expect(jsonTooDeep(nested(2), 2)).toBe(false);
    expect(jsonTooDeep('"just a string"', 0)).toBe(false);
  });
});
