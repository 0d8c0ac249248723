import { generateKeyPairSync } from 'node:crypto';
import { RETRY_DEFAULTS } from '../../../src/config/fragments';
import { FakeGithub } from '../../../src/dev/fake-github';
import { ErrorCodes } from '../../../src/errors';
import { githubConfigSchema } from '../../../src/invokers/github/config';
import { GithubInvoker, MAX_DISPATCH_INPUTS } from '../../../src/invokers/github/invoker';
import type { JsonObject } from '../../../src/model/json';
import { runOf, testContext } from '../../helpers/invoke';

const retry = { ...RETRY_DEFAULTS, initialDelayMs: 10, maxDelayMs: 20 };
const method = (extra: JsonObject = {}): JsonObject => ({ type: 'GITHUB', org: 'acme', repo: 'api', workflow: 'deploy.yml', ...extra });

describe('GithubInvoker', () => {
  const github = new FakeGithub({ token: 'gh-token', repos: ['acme/api'], stepMs: 100 });
  beforeAll(() => github.start());
  afterAll(() => github.close());
  const invoker = (extra: Record<string, unknown> = {}) =>
    new GithubInvoker(githubConfigSchema.parse({ apiUrl: github.url, token: 'gh-token', pollIntervalMs: 30, retry, ...extra }));
  const lastDispatch = () => {
    const r = github.requests.filter((q) => q.path.endsWith('/dispatches')).pop()!;
    return { headers: r.headers, body: JSON.parse(r.body) as { ref: string; inputs: Record<string, string> } };
  };

  it('dispatches with user inputs, port_payload and port_context, on main by default', async () => {
    const run = await runOf(method(), { version: '1.2.3', replicas: 3, flags: { canary: true } });
    const { ctx } = testContext();
    const outcome = await invoker().invoke(run, ctx);
    expect(outcome.status).toBe('delivered');
    const d = lastDispatch();
    expect(d.headers.authorization).toBe('Bearer gh-token');
    expect(d.body.ref).toBe('main');
    expect(d.body.inputs.version).toBe('1.2.3');
    expect(d.body.inputs.replicas).toBe(3);
    expect(d.body.inputs.flags).toBe('{"canary":true}');
    expect(JSON.parse(d.body.inputs.port_payload!)).toMatchObject({ context: { runId: 'r_test' }, payload: { properties: { version: '1.2.3' } } });
    expect(JSON.parse(d.body.inputs.port_context!)).toMatchObject({ runId: 'r_test', orgId: 'org_demo', action: 'deploy_service' });
  });

  it('honours workflowInputs.ref, omitUserInputs and omitPayload', async () => {
    const run = await runOf(method({ workflowInputs: { ref: 'release', region: 'eu' }, omitUserInputs: true, omitPayload: true }), { version: '9' });
    await invoker().invoke(run, testContext().ctx);
    const d = lastDispatch();
    expect(d.body.ref).toBe('release');
    expect(Object.keys(d.body.inputs).sort()).toEqual(['port_context', 'region']);
  });

  it('fails clearly past GitHub’s input limit, without calling GitHub', async () => {
    const before = github.requests.length;
    const many: JsonObject = {};
    for (let i = 0; i < MAX_DISPATCH_INPUTS; i++) many[`in${i}`] = String(i);
    const outcome = await invoker().invoke(await runOf(method(), many), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.INVOCATION_INVALID });
    expect(outcome.summary).toContain('at most 25 workflow inputs');
    expect(github.requests.length).toBe(before);
  });

  it('follows the run the dispatch created to SUCCESS, with its link', async () => {
    const t = testContext();
    const outcome = await invoker().invoke(await runOf(method(), { version: '1' }), t.ctx);
    expect(outcome.links?.[0]).toMatch(/\/actions\/runs\/\d+$/);
    await t.settle();
    const final = t.reports[t.reports.length - 1]!;
    expect(final).toMatchObject({ status: 'SUCCESS', statusLabel: 'success', links: outcome.links, externalRunId: outcome.externalRunId });
  });

  it('ends FAILURE when the workflow concludes otherwise', async () => {
    const t = testContext();
    await invoker().invoke(await runOf(method(), { conclusion: 'failure' }), t.ctx);
    await t.settle();
    expect(t.reports[t.reports.length - 1]).toMatchObject({ status: 'FAILURE', statusLabel: 'failure' });
  });

  it('finds the run by its title where the API gives no run id (older GHES)', async () => {
    const old = new FakeGithub({ token: 'gh-token', runDetails: false, stepMs: 100 });
    await old.start();
    try {
      const inv = new GithubInvoker(githubConfigSchema.parse({ apiUrl: old.url, token: 'gh-token', pollIntervalMs: 30, retry }));
      const t = testContext();
      const outcome = await inv.invoke(await runOf(method(), {}, 'r_titled'), t.ctx);
      expect(outcome.status).toBe('delivered');
      expect(outcome.externalRunId).toBeUndefined();
      await t.settle();
      const found = t.reports.find((r) => r.log?.includes('found'));
      expect(found?.externalRunId).toBe(String(old.runs[0]!.id));
      expect(t.reports[t.reports.length - 1]).toMatchObject({ status: 'SUCCESS' });
      // The first dispatch asked for run details, was refused, and was sent again without.
      expect(old.requests.filter((r) => r.path.endsWith('/dispatches')).length).toBe(2);
    } finally {
      await old.close();
    }
  });

  it('forgets a claimed workflow run once no lookup can list it any more (the claims stay bounded)', async () => {
    const old = new FakeGithub({ token: 'gh-token', runDetails: false, stepMs: 20 });
    await old.start();
    // Only Date is faked: the HTTP calls and their timers run as usual.
    jest.useFakeTimers({ doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    try {
      const inv = new GithubInvoker(githubConfigSchema.parse({ apiUrl: old.url, token: 'gh-token', pollIntervalMs: 30, findRunTimeoutMs: 5_000, retry }));
      const follow = async (runId: string) => {
        const t = testContext();
        await inv.invoke(await runOf(method(), {}, runId), t.ctx);
        await t.settle();
        expect(t.reports.find((r) => r.log?.includes('found'))).toBeDefined();
      };
      await follow('r_claim_1');
      await follow('r_claim_2');
      expect(inv.claimedCount).toBe(2);
      // Past the lookup window (5 s), 10 s before a dispatch and a minute for clocks: the next claim forgets both.
      jest.setSystemTime(Date.now() + 76_000);
      await follow('r_claim_3');
      expect(inv.claimedCount).toBe(1);
    } finally {
      jest.useRealTimers();
      await old.close();
    }
  });

  it('does not follow when reportWorkflowStatus is false', async () => {
    const t = testContext();
    const outcome = await invoker().invoke(await runOf(method({ reportWorkflowStatus: false })), t.ctx);
    expect(outcome.status).toBe('succeeded');
    expect(t.followUps).toHaveLength(0);
  });

  it('a dispatch answer it cannot read is still a dispatch: no FAILURE, no second dispatch', async () => {
    for (const body of ['<html>accepted</html>', '{"workflow_run_id":"12","html_url":5}', '[1,2]']) {
      const before = github.requests.filter((q) => q.path.endsWith('/dispatches')).length;
      github.failNext(/\/dispatches$/, { status: 200, body });
      const outcome = await invoker().invoke(await runOf(method({ reportWorkflowStatus: false })), testContext().ctx);
      expect([body, outcome.status]).toEqual([body, 'succeeded']);
      expect(outcome.externalRunId).toBeUndefined();
      expect(outcome.links).toEqual([]);
      expect(github.requests.filter((q) => q.path.endsWith('/dispatches')).length).toBe(before + 1);
    }
  });

  it('waits for a primary rate limit to reset, then retries', async () => {
    const reset = Math.ceil(Date.now() / 1000) + 1;
    github.failNext(/dispatches$/, { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) }, body: { message: 'API rate limit exceeded' } });
    const outcome = await invoker({ retry: { ...retry, deadlineMs: 10_000 } }).invoke(await runOf(method({ reportWorkflowStatus: false })), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(Date.now()).toBeGreaterThanOrEqual(reset * 1000 - 50);
  });

  it.each([
    ['a bad token', { token: 'wrong' }, ErrorCodes.AUTH_FAILED, 'Bad credentials'],
    ['an unknown repository', { token: 'gh-token' }, ErrorCodes.BACKEND_REJECTED, 'HTTP 404'],
  ])('ends FAILURE on %s', async (_n, cfg, code, text) => {
    const repo = cfg.token === 'gh-token' ? 'nope' : 'api';
    const outcome = await invoker(cfg).invoke(await runOf(method({ repo })), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code });
    expect(outcome.summary).toContain(text);
  });

  it('says so when no credentials are configured', async () => {
    const inv = new GithubInvoker(githubConfigSchema.parse({ apiUrl: github.url }));
    const outcome = await inv.invoke(await runOf(method()), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.AUTH_FAILED });
    expect(outcome.summary).toContain('GITHUB_TOKEN');
  });

  it('authenticates as a GitHub App and caches the installation token', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const appGithub = new FakeGithub({ app: { id: '12345', publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() }, stepMs: 50 });
    await appGithub.start();
    try {
      const inv = new GithubInvoker(
        githubConfigSchema.parse({ apiUrl: appGithub.url, appId: '12345', appPrivateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), retry }),
      );
      for (const id of ['r_app1', 'r_app2']) {
        const outcome = await inv.invoke(await runOf(method({ reportWorkflowStatus: false }), {}, id), testContext().ctx);
        expect(outcome.status).toBe('succeeded');
      }
      expect(appGithub.requests.filter((r) => r.path.endsWith('/access_tokens'))).toHaveLength(1);
      expect(appGithub.requests.filter((r) => r.path.endsWith('/dispatches')).every((r) => r.headers.authorization?.startsWith('Bearer ghs_'))).toBe(true);
    } finally {
      await appGithub.close();
    }
  });
});
