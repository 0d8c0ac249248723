import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS, loadConfig, secretForOrg } from '../../src/config/config';
import { ConfigError } from '../../src/errors';
import { WEBHOOK_DEFAULTS } from '../../src/invokers/webhook/config';
import { GITHUB_DEFAULTS } from '../../src/invokers/github/config';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c.kafka.brokers).toEqual([]);
    expect(c.kafka.clientId).toBe(DEFAULTS.clientId);
    expect(c.groupId).toBe('action-router');
    expect(c.topics).toMatchObject({ trigger: 'action-triggers', status: 'action-run-status', dlq: 'action-triggers.dlq', orgTemplate: '{orgId}.runs' });
    expect(c.httpPort).toBe(8080);
    expect(c.logLevel).toBe('info');
    expect(c.invokers.webhook.timeoutMs).toBe(WEBHOOK_DEFAULTS.timeoutMs);
    expect(c.invokers.webhook.retry.maxAttempts).toBe(5);
    expect(c.invokers.github.apiUrl).toBe(GITHUB_DEFAULTS.apiUrl);
    expect(c.invokers.gitlab.url).toBe('https://gitlab.com');
    expect(c.kafka.sasl).toBeUndefined();
    expect(c.store.writerNice).toBe(10);
    expect(c.console.allowedHosts).toEqual([]);
    expect(loadConfig({ CONSOLE_ALLOWED_HOSTS: 'Console.Example.com:8443, 10.0.0.5,[::1]:8080' }).console.allowedHosts).toEqual(['console.example.com:8443', '10.0.0.5', '[::1]:8080']);
    expect(loadConfig({ RUNS_WRITER_NICE: '0' }).store.writerNice).toBe(0);
    expect(c.agent.ledgerPath).toBeUndefined();
    expect(c.agent.ledgerRetentionHours).toBe(DEFAULTS.agentLedgerRetentionHours);
    expect(loadConfig({ AGENT_LEDGER_PATH: '/data/calls.db', AGENT_LEDGER_RETENTION_HOURS: '24' }).agent).toMatchObject({ ledgerPath: '/data/calls.db', ledgerRetentionHours: 24 });
    expect(loadConfig({}).noRepeat).toBe(true);
    expect(loadConfig({ ROUTER_NO_REPEAT: 'false' }).noRepeat).toBe(false);
  });

  it('reads every kind of value', () => {
    const c = loadConfig({
      KAFKA_BROKERS: 'a:9092, b:9093',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
      WEBHOOK_ALLOWED_HOSTS: 'localhost,10.0.0.0/8',
      WEBHOOK_MAX_ATTEMPTS: '2',
      GITHUB_API_URL: 'https://ghe.example/api/v3/',
      LOG_LEVEL: 'debug',
    });
    expect(c.kafka.brokers).toEqual(['a:9092', 'b:9093']);
    expect(c.kafka.ssl).toBe(true);
    expect(c.kafka.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(c.invokers.webhook.allowedHosts).toEqual(['localhost', '10.0.0.0/8']);
    expect(c.invokers.webhook.retry).toMatchObject({ maxAttempts: 2, initialDelayMs: 500 });
    expect(c.invokers.github.apiUrl).toBe('https://ghe.example/api/v3');
  });

  it.each([
    [{ KAFKA_BROKERS: 'no-port' }, 'KAFKA_BROKERS'],
    [{ KAFKA_SSL: 'maybe' }, 'KAFKA_SSL'],
    [{ HTTP_PORT: 'eighty' }, 'HTTP_PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ ORG_TOPIC_TEMPLATE: 'runs' }, 'ORG_TOPIC_TEMPLATE'],
    [{ WEBHOOK_TIMEOUT_MS: '-1' }, 'WEBHOOK_TIMEOUT_MS'],
    [{ WEBHOOK_RETRY_MAX_MS: 'x' }, 'WEBHOOK_RETRY_MAX_MS'],
    [{ SCHEMA_REGISTRY_URL: 'not a url' }, 'SCHEMA_REGISTRY_URL'],
    [{ KAFKA_SASL_MECHANISM: 'plain' }, 'KAFKA_SASL_USERNAME'],
    [{ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SASL_MECHANISM'],
    [{ GITHUB_APP_ID: '1' }, 'GITHUB_APP_ID'],
    [{ ROUTER_MAX_IN_FLIGHT: '10', ROUTER_MAX_IN_FLIGHT_PER_PARTITION: '20' }, 'ROUTER_MAX_IN_FLIGHT_PER_PARTITION'],
    [{ RUNS_WRITER_NICE: '20' }, 'RUNS_WRITER_NICE'],
    [{ CONSOLE_ALLOWED_HOSTS: 'https://console.example.com' }, 'CONSOLE_ALLOWED_HOSTS'],
    [{ CONSOLE_ALLOWED_HOSTS: '*.example.com' }, 'CONSOLE_ALLOWED_HOSTS'],
    [{ CONSOLE_ALLOWED_HOSTS: 'console.example.com/login' }, 'CONSOLE_ALLOWED_HOSTS'],
    [{ RUNS_WRITER_NICE: '-5' }, 'RUNS_WRITER_NICE'],
    [{ AGENT_LEDGER_RETENTION_HOURS: '0' }, 'AGENT_LEDGER_RETENTION_HOURS'],
    [{ ROUTER_NO_REPEAT: 'sometimes' }, 'ROUTER_NO_REPEAT'],
    [{ AGENT_LEDGER_RETENTION_HOURS: '1.5' }, 'AGENT_LEDGER_RETENTION_HOURS'],
    [{ AGENT_LEDGER_RETENTION_HOURS: 'a week' }, 'AGENT_LEDGER_RETENTION_HOURS'],
  ])('names the variable of an invalid value: %j', (env, variable) => {
    const err = configError(env);
    expect(err.variable).toBe(variable);
    expect(err.message.startsWith(`${variable}: `)).toBe(true);
  });

  it('quotes the offending value, except for secrets', () => {
    expect(configError({ HTTP_PORT: 'eighty' }).message).toContain('"eighty"');
    expect(configError({ GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: 'k', GITHUB_API_URL: 'ftp://x' }).variable).toBe('GITHUB_API_URL');
  });

  it('reads secret and token files, and says which variable’s file is broken', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'orgs.json'), JSON.stringify({ org_a: 'secret-a' }));
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ 'acme/api': 'tok' }));
    const c = loadConfig({ SIGNING_SECRET: 'default', ORG_SECRETS_FILE: join(dir, 'orgs.json'), GITLAB_TRIGGER_TOKENS_FILE: join(dir, 'tokens.json'), GITLAB_TRIGGER_TOKEN_acme_web: 'env-tok' });
    expect(secretForOrg(c.signing, 'org_a')).toBe('secret-a');
    expect(secretForOrg(c.signing, 'org_b')).toBe('default');
    expect(c.invokers.gitlab.triggerTokens).toEqual({ 'acme/api': 'tok' });
    expect(c.invokers.gitlab.envTokens.acme_web).toBe('env-tok');
    expect(configError({ ORG_SECRETS_FILE: join(dir, 'missing.json') }).variable).toBe('ORG_SECRETS_FILE');
    writeFileSync(join(dir, 'bad.json'), '{');
    expect(configError({ GITLAB_TRIGGER_TOKENS_FILE: join(dir, 'bad.json') }).variable).toBe('GITLAB_TRIGGER_TOKENS_FILE');
  });

  it('takes GitLab trigger tokens from the environment only under their prefix, unless bare names are opted into', () => {
    const env = { SIGNING_SECRET: 'default', GITLAB_TRIGGER_TOKEN_acme_web: 'prefixed', deploy_db_password: 'hunter2', acme_web: 'bare', db_password: 'x' };
    const tokens = loadConfig(env).invokers.gitlab.envTokens;
    expect(tokens).toEqual({ acme_web: 'prefixed' });
    // An event naming group "deploy", project "db_password" finds nothing to send.
    expect(tokens.deploy_db_password).toBeUndefined();
    const opted = loadConfig({ ...env, GITLAB_UNPREFIXED_TOKEN_ENV: 'true' }).invokers.gitlab.envTokens;
    expect(opted).toMatchObject({ acme_web: 'prefixed', deploy_db_password: 'hunter2' });
    expect(configError({ ...env, GITLAB_UNPREFIXED_TOKEN_ENV: 'maybe' }).variable).toBe('GITLAB_UNPREFIXED_TOKEN_ENV');
  });

  it('reads TRUST_PROXY as Fastify takes it, and names it when it is neither', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8, 192.0.2.7' }).trustProxy).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
    for (const bad of ['yes-please', '10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'proxy.internal', '10.0.0.1/8/1']) {
      const err = configError({ TRUST_PROXY: bad });
      expect(err.variable).toBe('TRUST_PROXY');
      expect(err.message).toContain(bad);
    }
  });

  it('OpenID Connect: all of its settings or none, each missing one named; http only for localhost; openid in the scopes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oidc-config-'));
    writeFileSync(join(dir, 'secret'), 'from-a-file\n');
    const full = { OIDC_ISSUER_URL: 'https://idp.example', OIDC_CLIENT_ID: 'router', OIDC_CLIENT_SECRET_FILE: join(dir, 'secret'), OIDC_ACCESS_FILE: '/etc/access.json', PUBLIC_URL: 'https://router.example' };
    const c = loadConfig(full);
    expect(c.oidc).toMatchObject({ clientSecret: 'from-a-file', scopes: 'openid email profile', groupsClaim: 'groups', refreshSeconds: 300, startTimeoutSeconds: 30 });
    expect(c.clientSignIn).toBe(true);
    for (const name of ['OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET_FILE', 'OIDC_ACCESS_FILE', 'PUBLIC_URL']) {
      const env: Record<string, string> = { ...full };
      delete env[name];
      expect(configError(env).variable).toBe(name === 'OIDC_CLIENT_SECRET_FILE' ? 'OIDC_CLIENT_SECRET' : name);
    }
    expect(configError({ ...full, OIDC_ISSUER_URL: 'http://idp.example' }).message).toContain('must be https');
    expect(loadConfig({ ...full, OIDC_ISSUER_URL: 'http://127.0.0.1:8081' }).oidc.issuerUrl).toBe('http://127.0.0.1:8081');
    expect(configError({ ...full, OIDC_SCOPES: 'email groups' }).variable).toBe('OIDC_SCOPES');
    expect(configError({ ...full, OIDC_REFRESH_SECONDS: '0' }).variable).toBe('OIDC_REFRESH_SECONDS');
    // Client sign-in off with nobody else to sign in: refused.
    expect(configError({ CONSOLE_CLIENT_SIGNIN: 'false' }).variable).toBe('CONSOLE_CLIENT_SIGNIN');
    expect(loadConfig({ ...full, CONSOLE_CLIENT_SIGNIN: 'false' }).clientSignIn).toBe(false);
  });

  it('reads Port’s agent’s variables as aliases of ours; ours win; a bad value names Port’s variable', () => {
    const port = {
      PORT_CLIENT_SECRET: 'port-client-secret',
      KAFKA_CONSUMER_BOOTSTRAP_SERVERS: 'b1:9092,b2:9092',
      KAFKA_CONSUMER_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_CONSUMER_AUTHENTICATION_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
      KAFKA_CONSUMER_SESSION_TIMEOUT_MS: '45000',
      KAFKA_CONSUMER_AUTO_OFFSET_RESET: 'latest',
      KAFKA_CONSUMER_GROUP_ID: 'org_x.agent',
      KAFKA_RUNS_TOPIC: 'org_x.runs',
      WEBHOOK_INVOKER_TIMEOUT: '2.5',
      WEBHOOK_VERIFY_SSL: 'False',
      DETAILED_LOGGING: 'false',
      CONTROL_THE_PAYLOAD_CONFIG_PATH: '/etc/agent/mapping.json',
      STREAMER_NAME: 'KAFKA',
      LOG_LEVEL: 'WARNING',
      PORT_CLIENT_ID: 'id',
      PORT_API_BASE_URL: 'https://api.getport.io',
      POLLING_INTERVAL_SECONDS: '10',
    };
    const c = loadConfig(port);
    expect(c.signing.defaultSecret).toBe('port-client-secret');
    expect(c.kafka.brokers).toEqual(['b1:9092', 'b2:9092']);
    expect(c.kafka.ssl).toBe(true);
    expect(c.kafka.sasl?.mechanism).toBe('scram-sha-512');
    expect(c.window.sessionTimeoutMs).toBe(45_000);
    expect(c.agent).toMatchObject({ offsetReset: 'latest', groupId: 'org_x.agent', topic: 'org_x.runs', mappingPath: '/etc/agent/mapping.json', verifyTls: false, detailedLogging: false });
    expect(c.invokers.webhook.timeoutMs).toBe(2_500);
    expect(c.logLevel).toBe('warn');
    // Ours win where both are set.
    expect(loadConfig({ ...port, SIGNING_SECRET: 'ours', KAFKA_BROKERS: 'mine:1' })).toMatchObject({ signing: { defaultSecret: 'ours' }, kafka: { brokers: ['mine:1'] } });
    expect(configError({ WEBHOOK_INVOKER_TIMEOUT: 'soon' }).variable).toBe('WEBHOOK_INVOKER_TIMEOUT');
    expect(configError({ KAFKA_CONSUMER_SECURITY_PROTOCOL: 'TLS' }).variable).toBe('KAFKA_CONSUMER_SECURITY_PROTOCOL');
    const polling = configError({ STREAMER_NAME: 'POLLING' });
    expect([polling.variable, polling.message]).toEqual(['STREAMER_NAME', expect.stringContaining('POLLING is not supported by action-router agent')]);
  });
});
