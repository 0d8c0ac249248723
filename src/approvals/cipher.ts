import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * The parked event: AES-256-GCM under a key derived from APPROVAL_SECRET,
 * bound to the run id (a ciphertext moved to another run does not open).
 * The status topic may be read widely; the event's inputs stay the routers'.
 */
export class ParkedCipher {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHash('sha256').update(`action-router approvals\0${secret}`).digest();
  }

  seal(runId: string, event: { key: Buffer | null; value: Buffer }): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(runId));
    const plain = Buffer.from(JSON.stringify({ k: event.key?.toString('base64') ?? null, v: event.value.toString('base64') }));
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  open(runId: string, text: string): { key: Buffer | null; value: Buffer } {
    const raw = Buffer.from(text, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(runId));
    decipher.setAuthTag(raw.subarray(12, 28));
    const plain = JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as { k: string | null; v: string };
    return { key: plain.k === null ? null : Buffer.from(plain.k, 'base64'), value: Buffer.from(plain.v, 'base64') };
  }
}
