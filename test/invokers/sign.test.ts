import { portSignature, signatureHeaders, verifyPortSignature } from '../../src/invokers/sign';

describe('Port signatures', () => {
  // Vector computed independently: printf '1700000000.{"hello":"world"}' | openssl dgst -sha256 -hmac topsecret -binary | base64
  const VECTOR = 'v1,eYgzV+TExKvuQ89LMjZ9Z6E0RSBHnj6MhemEBqbWoqU=';

  it('matches an independently computed HMAC-SHA256 vector', () => {
    expect(portSignature('topsecret', '1700000000', '{"hello":"world"}')).toBe(VECTOR);
  });

  it('produces seconds-since-epoch timestamps', () => {
    const h = signatureHeaders('s', 'body', 1_700_000_000_999);
    expect(h['X-Port-Timestamp']).toBe('1700000000');
    expect(h['X-Port-Signature']).toBe(portSignature('s', '1700000000', 'body'));
  });

  it('verifies within the tolerance and refuses replays, tampering and absence', () => {
    const now = 1_700_000_000_000;
    const body = '{"hello":"world"}';
    expect(verifyPortSignature('topsecret', body, '1700000000', VECTOR, { now })).toEqual({ ok: true });
    expect(verifyPortSignature('topsecret', Buffer.from(body), '1700000000', VECTOR, { now })).toEqual({ ok: true });
    expect(verifyPortSignature('topsecret', body, '1700000000', VECTOR, { now: now + 301_000 })).toEqual({ ok: false, reason: 'expired' });
    expect(verifyPortSignature('topsecret', '{"hello":"World"}', '1700000000', VECTOR, { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPortSignature('other', body, '1700000000', VECTOR, { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPortSignature('topsecret', body, undefined, VECTOR, { now })).toEqual({ ok: false, reason: 'missing' });
    expect(verifyPortSignature('topsecret', body, 'abc', VECTOR, { now })).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts any of several space-separated signatures (secret rotation)', () => {
    const now = 1_700_000_000_000;
    expect(verifyPortSignature('topsecret', '{"hello":"world"}', '1700000000', `v1,AAAA ${VECTOR}`, { now }).ok).toBe(true);
  });
});
