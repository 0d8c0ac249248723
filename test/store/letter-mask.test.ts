import { LetterCopy, maskLetterHeaders, maskLetterValue } from '../../src/store/letter-mask';

/** What the store keeps of a dead letter: masked as a run page, withheld when it cannot be, else as it came. */
describe('maskLetterValue', () => {
  const text = (v: { value: Buffer | null }) => v.value?.toString('utf8') ?? null;

  test('masks censored inputs and keeps every other byte of meaning (big integers, floats, key order)', () => {
    const event = '{"payload":{"properties":{"n":12345678901234567890,"f":1.0,"pw":"s3cret","10":1,"2":2},"censoredProperties":["pw","absent"]}}';
    const kept = maskLetterValue(Buffer.from(event), false);
    expect(kept.copy).toBe(LetterCopy.MASKED);
    expect(text(kept)).toBe('{"payload":{"properties":{"n":12345678901234567890,"f":1.0,"pw":"********","10":1,"2":2},"censoredProperties":["pw","absent"]}}');
  });

  test('a value with nothing to mask is kept as it came', () => {
    for (const value of ['{"payload":{"properties":{"a":1},"censoredProperties":[]}}', '[1,2]', '"just text"', '{"a": {"b": 1}}']) {
      expect(maskLetterValue(Buffer.from(value), false)).toEqual({ value: Buffer.from(value), copy: LetterCopy.ASIS });
    }
  });

  test('binary or unreadable values: as they came, unless the router says they hold secrets or they name censored inputs', () => {
    const avro = Buffer.from([0, 0, 0, 0, 7, 0x0c, ...Buffer.from('s3cret')]);
    expect(maskLetterValue(avro, false)).toEqual({ value: avro, copy: LetterCopy.ASIS });
    expect(maskLetterValue(avro, true)).toEqual({ value: null, copy: LetterCopy.WITHHELD });
    expect(maskLetterValue(Buffer.from('{"payload":{"censoredProperties":["pw"],"properties":{"pw":"s3c'), false).copy).toBe(LetterCopy.WITHHELD);
  });

  test('free-form fields given as JSON text are masked inside; text that is no object is masked whole', () => {
    const kept = maskLetterValue(Buffer.from(JSON.stringify({ properties: '{"pw":"s3cret","a":1}', censoredProperties: ['pw'], invocationMethod: { type: 'WEBHOOK', settings: '{"url":"u","body":{"k":"s3cret"}}' } })), false);
    const out = JSON.parse(text(kept)!);
    expect(JSON.parse(out.properties)).toEqual({ pw: '********', a: 1 });
    expect(JSON.parse(out.invocationMethod.settings)).toEqual({ url: 'u', body: '[redacted]' });
    const unreadable = maskLetterValue(Buffer.from(JSON.stringify({ properties: 'pw=s3cret', censoredProperties: ['pw'] })), false);
    expect(JSON.parse(text(unreadable)!).properties).toBe('********');
  });

  test('nesting too deep to write back withholds rather than showing the secret', () => {
    const deep = `{"payload":{"censoredProperties":["pw"],"properties":{"pw":"s3cret","x":${'['.repeat(200_000)}${']'.repeat(200_000)}}}}`;
    const kept = maskLetterValue(Buffer.from(deep), false);
    expect(kept.copy).not.toBe(LetterCopy.ASIS);
    expect(text(kept) ?? '').not.toContain('s3cret');
  });
});

describe('maskLetterHeaders', () => {
  test('credential-like headers are masked, the router\'s and the rest kept', () => {
    expect(maskLetterHeaders({ Authorization: 'Bearer x', 'x-api-key': 'k', cookie: 'c', 'x-port-signature': 's', 'x-trace-id': 't', 'x-dlq-error': 'e', 'content-type': 'application/json' })).toEqual({
      Authorization: '[redacted]',
      'x-api-key': '[redacted]',
      cookie: '[redacted]',
      'x-port-signature': '[redacted]',
      'x-trace-id': 't',
      'x-dlq-error': 'e',
      'content-type': 'application/json',
    });
  });
});
