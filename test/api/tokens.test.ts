import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ApiClients } from '../../src/api/clients';
import { API_AUDIENCE, CONSOLE_AUDIENCE, TokenIssuer } from '../../src/api/tokens';

/** Bearer tokens: only what this service issued, unchanged and with an expiry, stands for a client. */
describe('TokenIssuer', () => {
  const SECRET = 'a-token-secret-of-at-least-32-characters';
  const dir = mkdtempSync(join(tmpdir(), 'tokens-'));
  writeFileSync(join(dir, 'clients.json'), JSON.stringify({ 'acme-ci': { secret: 'acme-secret-0123456789', orgId: 'org_acme', roles: [] } }));
  const clients = ApiClients.load(join(dir, 'clients.json'));
  const issuer = new TokenIssuer(clients, 3600, SECRET);
  const key = Buffer.from(SECRET, 'utf8');
  const forge = (claims: { exp?: number; sub?: string; sv?: string | null; jti?: string }, audience = API_AUDIENCE) => {
    let jwt = new SignJWT({ org: 'org_acme', roles: [], sv: 'sv' in claims ? claims.sv : clients.secretVersion('acme-ci') }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('action-router').setAudience(audience).setIssuedAt();
    if (claims.sub) jwt = jwt.setSubject(claims.sub);
    if (claims.jti) jwt = jwt.setJti(claims.jti);
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

  test('every token has an id of its own; a console session without one is refused (signing out could not end it)', async () => {
    const a = await issuer.verify(await issuer.issue({ clientId: 'acme-ci', orgId: 'org_acme', roles: [] }));
    const b = await issuer.verify(await issuer.issue({ clientId: 'acme-ci', orgId: 'org_acme', roles: [] }));
    expect(a!.tokenId).toMatch(/^[0-9a-f-]{36}$/);
    expect(b!.tokenId).not.toBe(a!.tokenId);
    const sessions = new TokenIssuer(clients, 3600, SECRET, CONSOLE_AUDIENCE);
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    expect(await sessions.verify(await forge({ sub: 'acme-ci', exp: inAnHour, jti: 's1' }, CONSOLE_AUDIENCE))).toMatchObject({ clientId: 'acme-ci', tokenId: 's1' });
    expect(await sessions.verify(await forge({ sub: 'acme-ci', exp: inAnHour }, CONSOLE_AUDIENCE))).toBeNull();
    // API tokens from before ids were issued still hold until they expire.
    expect(await issuer.verify(await forge({ sub: 'acme-ci', exp: inAnHour }))).toMatchObject({ clientId: 'acme-ci' });
  });
});
