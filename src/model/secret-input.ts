import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Port's secret inputs (`"encryption": "aes256-gcm"`): the value travels as
 * base64 of a 16-byte IV, the AES-256-GCM ciphertext and the 16-byte tag.
 * The key is the first 32 bytes of the org's secret in UTF-8, the secret
 * the org's agents hold to check signatures (PORT_CLIENT_SECRET), which
 * is why they can decrypt. A secret shorter than 32 bytes cannot be a key.
 */
export const SECRET_INPUT_ENCRYPTION = 'aes256-gcm';

const IV_BYTES = 16;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** The key from an org secret, or null when the secret is too short to be one. */
export function secretInputKey(secret: string): Buffer | null {
  const bytes = Buffer.from(secret, 'utf8');
  return bytes.length < KEY_BYTES ? null : bytes.subarray(0, KEY_BYTES);
}

export function encryptSecretInput(plaintext: string, key: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** The plaintext, or null when `value` is not a ciphertext of this key (its tag does not verify). */
export function decryptSecretInput(value: string, key: Buffer): string | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return null;
  const data = Buffer.from(value, 'base64');
  if (data.length < IV_BYTES + TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    const text = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    return new TextDecoder('utf-8', { fatal: true }).decode(text);
  } catch {
    return null;
  }
}
