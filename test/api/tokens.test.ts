import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ApiClients } from '../../src/api/clients';
import { API_AUDIENCE, TokenIssuer } from '../../src/api/tokens';

/** Bearer tokens: only what this service issued, unchanged and with an expiry, stands for a client. */
describe('TokenIssuer', () => {
  const SECRET = 'a-token-secret-of-at-least-32-characters';
  const dir = mkdtempSync(join(tmpdir(), 'tokens-'));
  writeFileSync(join(dir, 'clients.json'), JSON.stringify({ 'acme-ci': { secret: 'acme-secret-0123456789', orgId: 'org_acme', roles: [] } }));
  const clients = ApiClients.load(join(dir, 'clients.json'));
  const issuer = new TokenIssuer(clients, 3600, SECRET);
  const key = Buffer.from(SECRET, 'utf8');
  const forge = (claims: { exp?: number; sub?: string; sv?: string | null }) => {
    let jwt = new SignJWT({ org: 'org_acme', roles: [], sv: 'sv' in claims ? claims.sv : clients.secretVersion('acme-ci') }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('action-router').setAudience(API_AUDIENCE).setIssuedAt();
    if (claims.sub) jwt = jwt.setSubject(claims.sub);
    if (claims.exp) jwt = jwt.setExpirationTime(claims.exp);
    return jwt.sign(key);
  };

  test('its own tokens stand for their client', async () => {
    const principal = await issuer.verify(await issuer.issue({ clientId: 'acme-ci', orgId: 'org_acme', roles: [] }));
    expect(principal).toMatchObject({ clientId: 'acme-ci', orgId: 'org_acme' });
  });

  test('a correctly signed token without an expiry, or without a subject, is refused', async () => {
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    expect(await issuer.verify(await forge({ sub: 'acme-ci', exp: inAnHour }))).toMatchObject({ clientId: 'acme-ci' });
    expect(await issuer.verify(await forge({ sub: 'acme-ci' }))).toBeNull();
    expect(await issuer.verify(await forge({ exp: inAnHour }))).toBeNull();
  });

  test('a token issued under another secret of its client is refused', async () => {
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    expect(await issuer.verify(await forge({ sub: 'acme-ci', exp: inAnHour, sv: 'an-old-secret' }))).toBeNull();
    expect(await issuer.verify(await forge({ sub: 'acme-ci', exp: inAnHour, sv: null }))).toBeNull();
  });
});
