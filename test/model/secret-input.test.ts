import { createDecipheriv } from 'node:crypto';
import { decryptSecretInput, encryptSecretInput, secretInputKey } from '../../src/model/secret-input';

/** Port's secret-input format: base64(IV 16 | ciphertext | tag 16), AES-256-GCM under the first 32 bytes of the secret. */
describe('secret inputs', () => {
  const secret = 'an-org-secret-that-is-long-enough-to-key';
  const key = secretInputKey(secret)!;

  it('writes Port’s layout, which a plain AES-GCM decryption (as Port’s agent does it) opens', () => {
    const value = encryptSecretInput('p@ss wörd', key);
    const data = Buffer.from(value, 'base64');
    expect(data.length).toBe(16 + Buffer.byteLength('p@ss wörd') + 16);
    const d = createDecipheriv('aes-256-gcm', Buffer.from(secret).subarray(0, 32), data.subarray(0, 16));
    d.setAuthTag(data.subarray(data.length - 16));
    expect(Buffer.concat([d.update(data.subarray(16, data.length - 16)), d.final()]).toString('utf8')).toBe('p@ss wörd');
    expect(decryptSecretInput(value, key)).toBe('p@ss wörd');
  });

  it('refuses short secrets, other keys, tampering and text that is not a ciphertext', () => {
    expect(secretInputKey('x'.repeat(31))).toBeNull();
    const value = encryptSecretInput('v', key);
    expect(decryptSecretInput(value, secretInputKey('another-org-secret-that-is-long-enough')!)).toBeNull();
    const bytes = Buffer.from(value, 'base64');
    bytes[20]! ^= 1;
    expect(decryptSecretInput(bytes.toString('base64'), key)).toBeNull();
    expect(decryptSecretInput('plain text', key)).toBeNull();
    expect(decryptSecretInput('', key)).toBeNull();
  });
});
