import { ParkedCipher } from '../../src/approvals/cipher';

/** The sealed event of a waiting run opens only for its run, under its secret, unchanged. */
describe('ParkedCipher', () => {
  const cipher = new ParkedCipher('a-parking-secret-of-32-characters!!');
  const event = { key: Buffer.from('r_abc123'), value: Buffer.from('{"censored":"s3cret","n":1e+16}') };

  test('round trip, key and bytes exact; the secret value is not readable in the sealed text', () => {
    const sealed = cipher.seal('r_abc123', event);
    expect(Buffer.from(sealed, 'base64').toString('latin1')).not.toContain('s3cret');
    const opened = cipher.open('r_abc123', sealed);
    expect(opened.key!.equals(event.key)).toBe(true);
    expect(opened.value.equals(event.value)).toBe(true);
    expect(cipher.open('r_abc123', cipher.seal('r_abc123', { key: null, value: Buffer.alloc(0) }))).toEqual({ key: null, value: Buffer.alloc(0) });
  });

  test('another run, another secret, or one changed byte: it does not open', () => {
    const sealed = cipher.seal('r_abc123', event);
    expect(() => cipher.open('r_other99', sealed)).toThrow();
    expect(() => new ParkedCipher('another-parking-secret-of-32-chars!').open('r_abc123', sealed)).toThrow();
    const bytes = Buffer.from(sealed, 'base64');
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    expect(() => cipher.open('r_abc123', bytes.toString('base64'))).toThrow();
  });
});
