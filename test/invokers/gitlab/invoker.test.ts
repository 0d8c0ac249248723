import { RETRY_DEFAULTS } from '../../../src/config/fragments';
import { FakeGitlab } from '../../../src/dev/fake-gitlab';
import { ErrorCodes } from '../../../src/errors';
import { gitlabConfigSchema } from '../../../src/invokers/gitlab/config';
import { GitlabInvoker, tokenEnvName } from '../../../src/invokers/gitlab/invoker';
import type { JsonObject } from '../../../src/model/json';
import { runOf, testContext } from '../../helpers/invoke';

const retry = { ...RETRY_DEFAULTS, initialDelayMs: 10, maxDelayMs: 20 };
const method = (extra: JsonObject = {}): JsonObject => ({ type: 'GITLAB', groupName: 'acme/platform', projectName: 'api', ...extra });

describe('GitlabInvoker', () => {
  const gitlab = new FakeGitlab({ triggerTokens: { 'acme/platform/api': 'trig' }, apiToken: 'api-token', stepMs: 80 });
  beforeAll(() => gitlab.start());
  afterAll(() => gitlab.close());
  const invoker = (extra: Record<string, unknown> = {}) =>
    new GitlabInvoker(gitlabConfigSchema.parse({ url: gitlab.url, triggerTokens: { 'acme/platform/api': 'trig' }, pollIntervalMs: 30, retry, ...extra }));
  const lastTrigger = () => {
    const r = gitlab.requests.filter((q) => q.path.endsWith('/trigger/pipeline')).pop()!;
    return { path: r.path, body: JSON.parse(r.body) as { token: string; ref: string; variables: Record<string, string> } };
  };

  it('triggers the pipeline with the project token, string variables and port_payload', async () => {
    const run = await runOf(method({ pipelineVariables: { DEPLOY_ENV: 'staging', LEVEL: 2 } }), { version: '1.2.3', replicas: 3 });
    const outcome = await invoker().invoke(run, testContext().ctx);
    expect(outcome).toMatchObject({ status: 'delivered', externalRunId: String(gitlab.pipelines[0]!.id), links: [gitlab.pipelines[0]!.web_url] });
    const t = lastTrigger();
    expect(t.path).toBe('/api/v4/projects/acme%2Fplatform%2Fapi/trigger/pipeline');
    expect(t.body.token).toBe('trig');
    expect(t.body.ref).toBe('main');
    expect(t.body.variables).toMatchObject({ version: '1.2.3', replicas: '3', DEPLOY_ENV: 'staging', LEVEL: '2' });
    expect(JSON.parse(t.body.variables.port_payload!)).toMatchObject({ context: { runId: 'r_test' } });
  });

  it('takes the ref from the `ref` input, else defaultRef', async () => {
    await invoker().invoke(await runOf(method({ defaultRef: 'develop' }), { ref: 'hotfix' }), testContext().ctx);
    expect(lastTrigger().body.ref).toBe('hotfix');
    await invoker().invoke(await runOf(method({ defaultRef: 'develop', omitUserInputs: true, omitPayload: true })), testContext().ctx);
    expect(lastTrigger().body.ref).toBe('develop');
    expect(lastTrigger().body.variables).toEqual({});
  });

  it('finds the token under Port’s env naming', async () => {
    expect(tokenEnvName('acme/platform', 'api')).toBe('acme_platform_api');
    const inv = invoker({ triggerTokens: {}, envTokens: { acme_platform_api: 'trig' } });
    expect((await inv.invoke(await runOf(method()), testContext().ctx)).status).toBe('delivered');
  });

  it('ends FAILURE naming both places a missing token may be set', async () => {
    const outcome = await invoker({ triggerTokens: {} }).invoke(await runOf(method()), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.AUTH_FAILED });
    expect(outcome.summary).toContain('env GITLAB_TRIGGER_TOKEN_acme_platform_api');
  });

  it('ends FAILURE on GitLab’s 404 for a wrong token', async () => {
    const outcome = await invoker({ triggerTokens: { 'acme/platform/api': 'bad' } }).invoke(await runOf(method()), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.BACKEND_REJECTED });
    expect(outcome.summary).toContain('HTTP 404');
  });

  it('follows the pipeline with an API token, to SUCCESS or FAILURE', async () => {
    for (const [result, status] of [['success', 'SUCCESS'], ['failed', 'FAILURE']] as const) {
      const t = testContext();
      await invoker({ apiToken: 'api-token' }).invoke(await runOf(method({ pipelineVariables: { pipeline_result: result } })), t.ctx);
      await t.settle();
      expect(t.reports.some((r) => r.statusLabel === 'running')).toBe(true);
      expect(t.reports[t.reports.length - 1]).toMatchObject({ status, statusLabel: result });
    }
  });

  it('a trigger answer it cannot read is still one trigger: delivered, not followed, never sent again', async () => {
    for (const body of ['<html>created</html>', '{"id":"abc","web_url":"x"}', '']) {
      const before = gitlab.requests.filter((q) => q.path.endsWith('/trigger/pipeline')).length;
      gitlab.failNext(/\/trigger\/pipeline$/, { status: 201, body });
      const t = testContext();
      const outcome = await invoker({ apiToken: 'api-token' }).invoke(await runOf(method()), t.ctx);
      expect([body, outcome.status]).toEqual([body, 'delivered']);
      expect(outcome.externalRunId).toBeUndefined();
      expect(outcome.status === 'delivered' && outcome.log).toContain('cannot be followed');
      expect(t.followUps).toHaveLength(0);
      expect(gitlab.requests.filter((q) => q.path.endsWith('/trigger/pipeline')).length).toBe(before + 1);
    }
  });

  it('leaves the run to report on its own without an API token', async () => {
    const t = testContext();
    expect((await invoker().invoke(await runOf(method()), t.ctx)).status).toBe('delivered');
    expect(t.followUps).toHaveLength(0);
  });
});
