import { RETRY_DEFAULTS } from '../../src/config/fragments';
import { FakeGithub } from '../../src/dev/fake-github';
import { FakeGitlab } from '../../src/dev/fake-gitlab';
import type { FakeHttpServer } from '../../src/dev/http-fake';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import { ErrorCodes } from '../../src/errors';
import { githubConfigSchema } from '../../src/invokers/github/config';
import { GithubInvoker } from '../../src/invokers/github/invoker';
import { gitlabConfigSchema } from '../../src/invokers/gitlab/config';
import { GitlabInvoker } from '../../src/invokers/gitlab/invoker';
import type { Invoker } from '../../src/invokers/invoker';
import { AbortedError } from '../../src/net/retry';
import { webhookConfigSchema } from '../../src/invokers/webhook/config';
import { WebhookInvoker } from '../../src/invokers/webhook/invoker';
import type { JsonObject } from '../../src/model/json';
import { runOf, testContext } from '../helpers/invoke';

/** Small, fast limits so that every case finishes in well under a second. */
const retry = { ...RETRY_DEFAULTS, maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 50, deadlineMs: 5_000 };
const TIMEOUT_MS = 300;

interface Harness {
  name: string;
  server: FakeHttpServer;
  /** Path of the call that the invoker makes first. */
  callPath: RegExp;
  invoker(): Invoker;
  method(): JsonObject;
}

const harnesses: Harness[] = (() => {
  const webhook = new WebhookReceiver('contract-secret');
  const github = new FakeGithub({ token: 'gh-token' });
  const gitlab = new FakeGitlab({ triggerTokens: { 'acme/api': 'trigger-token' } });
  return [
    {
      name: 'WEBHOOK',
      server: webhook,
      callPath: /^\/hook$/,
      invoker: () =>
        new WebhookInvoker({
          config: webhookConfigSchema.parse({ allowedHosts: '127.0.0.1', timeoutMs: TIMEOUT_MS, retry }),
          secretFor: () => 'contract-secret',
        }),
      method: () => ({ type: 'WEBHOOK', url: `${webhook.url}/hook`, synchronized: true }),
    },
    {
      name: 'GITHUB',
      server: github,
      callPath: /\/dispatches$/,
      invoker: () => new GithubInvoker(githubConfigSchema.parse({ apiUrl: github.url, token: 'gh-token', timeoutMs: TIMEOUT_MS, retry })),
      method: () => ({ type: 'GITHUB', org: 'acme', repo: 'api', workflow: 'deploy.yml', reportWorkflowStatus: false }),
    },
    {
      name: 'GITLAB',
      server: gitlab,
      callPath: /\/trigger\/pipeline$/,
      invoker: () => new GitlabInvoker(gitlabConfigSchema.parse({ url: gitlab.url, triggerTokens: { 'acme/api': 'trigger-token' }, timeoutMs: TIMEOUT_MS, retry })),
      method: () => ({ type: 'GITLAB', groupName: 'acme', projectName: 'api' }),
    },
  ];
})();

/**
 * The shared invoker contract: every HTTP backend must behave the same way
 * on success, a transient failure, a permanent failure, a hanging backend
 * and a shutdown. (The KAFKA invoker's cases run against the real broker in
 * test/integration/router.test.ts.)
 */
describe.each(harnesses)('invoker contract: $name', (h) => {
  beforeAll(() => h.server.start());
  afterAll(() => h.server.close());
  const calls = () => h.server.requests.filter((r) => h.callPath.test(r.path)).length;

  it('succeeds with one call', async () => {
    const before = calls();
    const { ctx } = testContext();
    const outcome = await h.invoker().invoke(await runOf(h.method()), ctx);
    expect(['delivered', 'succeeded']).toContain(outcome.status);
    expect(outcome.attempt).toBe(1);
    expect(calls() - before).toBe(1);
  });

  it('retries a retriable failure (503, then 429 with Retry-After) and then succeeds', async () => {
    const before = calls();
    h.server.failNext(h.callPath, { status: 503, body: { message: 'unavailable' } }, { status: 429, headers: { 'retry-after': '0' }, body: {} });
    const { ctx } = testContext();
    const outcome = await h.invoker().invoke(await runOf(h.method()), ctx);
    expect(['delivered', 'succeeded']).toContain(outcome.status);
    expect(outcome.attempt).toBe(3);
    expect(calls() - before).toBe(3);
  });

  it('fails at once on a permanent failure, with a readable summary', async () => {
    const before = calls();
    h.server.failNext(h.callPath, { status: 422, body: { message: 'Unprocessable: bad input' } });
    const { ctx } = testContext();
    const outcome = await h.invoker().invoke(await runOf(h.method()), ctx);
    expect(outcome.status).toBe('failed');
    if (outcome.status !== 'failed') return;
    expect(outcome.code).toBe(ErrorCodes.BACKEND_REJECTED);
    expect(outcome.summary).toContain('HTTP 422');
    expect(outcome.summary).toContain('Unprocessable: bad input');
    expect(calls() - before).toBe(1);
  });

  it('gives up on a backend that never answers, within its timeouts', async () => {
    const before = calls();
    const hang = { status: 200, delayMs: 3_000, body: {} };
    h.server.failNext(h.callPath, hang, hang, hang);
    const { ctx } = testContext();
    const t0 = Date.now();
    const outcome = await h.invoker().invoke(await runOf(h.method()), ctx);
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'failed') expect(outcome.code).toBe(ErrorCodes.TIMEOUT);
    expect(calls() - before).toBe(3);
    expect(Date.now() - t0).toBeLessThan(3 * TIMEOUT_MS + 2_500);
  });

  it('stops promptly when aborted (shutdown), without an outcome', async () => {
    h.server.failNext(h.callPath, { status: 200, delayMs: 3_000, body: {} });
    const ac = new AbortController();
    const { ctx } = testContext(ac.signal);
    const t0 = Date.now();
    const pending = h.invoker().invoke(await runOf(h.method()), ctx);
    setTimeout(() => ac.abort(), 100);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
