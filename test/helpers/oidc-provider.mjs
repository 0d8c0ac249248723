// A real OpenID provider for tests: node-oidc-provider (a certified
// implementation), ESM-only, so it runs in a process of its own.
//   node test/helpers/oidc-provider.mjs PORT CONFIG.json
// CONFIG: { "clients": [ …oidc-provider client metadata… ], "usersFile": "…" }.
// The users file maps a login name to { email, name, groups } and is read
// again for every token, so a test changes someone's groups by rewriting it.
// Any password signs in (the provider's development login page).
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const users = () => JSON.parse(readFileSync(config.usersFile, 'utf8'));
const SCOPE = 'openid email profile groups offline_access';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: config.clients,
  scopes: SCOPE.split(' '),
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  // The scopes' claims in the ID token too, as Okta, Entra ID and Keycloak put them there.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: 3600, IdToken: 3600, RefreshToken: 86400, Session: 86400, Grant: 86400, Interaction: 600, AuthorizationCode: 60 },
  // A first-party console: consent is given, never asked.
  loadExistingGrant: async (ctx) => {
    const existing = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (existing) return ctx.oidc.provider.Grant.find(existing);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(SCOPE);
    await grant.save();
    return grant;
  },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => {
      const u = users()[id] ?? {};
      return { sub: id, email: u.email, email_verified: true, name: u.name, ...(u.groups ? { groups: u.groups } : {}) };
    },
  }),
});
provider.on('server_error', (_ctx, err) => process.stderr.write(`oidc-provider: ${err.stack}\n`));
provider.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
