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
import type { Admin, Producer } from 'kafkajs';
import { RejectedEventError } from '../../src/errors';
import { kafkaInvokerConfigSchema } from '../../src/invokers/kafka/config';
import { KafkaInvoker } from '../../src/invokers/kafka/invoker';
import { BatchProducer } from '../../src/kafka/batch-producer';
import { TestKafka, testTopics } from '../helpers/kafka';

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
 * and a shutdown. The KAFKA invoker's own form of the contract follows.
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

/**
 * The contract in the KAFKA invoker's terms, on the real broker: one write
 * on success; a write that can never succeed is the run's rejection (it is
 * dead-lettered), not a retry loop; a broker away is waited out until
 * shutdown, which stops it promptly without an outcome.
 */
describe('invoker contract: KAFKA', () => {
  const k = new TestKafka();
  const topics = testTopics();
  const template = topics.orgTemplate;
  let producer: Producer;
  let admin: Admin;
  const invoker = (p: Producer = producer) =>
    new KafkaInvoker({ config: kafkaInvokerConfigSchema.parse({}), producer: new BatchProducer(p), admin, orgTopicTemplate: template, secretFor: () => 'contract-secret' });
  beforeAll(async () => {
    producer = k.kafka.producer();
    admin = k.kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
  });
  afterAll(async () => {
    await Promise.all([producer.disconnect(), admin.disconnect()]);
    await k.deleteTopics(topics);
    await k.close();
  });

  it('succeeds with one write', async () => {
    const { ctx } = testContext();
    const outcome = await invoker().invoke(await runOf({ type: 'KAFKA' }, {}, 'r_contract_1'), ctx);
    expect(outcome).toMatchObject({ status: 'delivered', silent: false });
    const topic = template.replace('{orgId}', 'org_demo');
    expect(await k.messageCount(topic)).toBe(1);
  });

  it('fails at once on a permanent failure: a record the topic can never take is the run’s rejection', async () => {
    const topic = template.replace('{orgId}', 'org_small');
    await k.createTopic(topic, 1, { 'max.message.bytes': '1024' });
    const run = await runOf({ type: 'KAFKA' }, { notes: 'n'.repeat(4_000) }, 'r_contract_big');
    const pending = invoker().invoke({ ...run, orgId: 'org_small' }, testContext().ctx);
    await expect(pending).rejects.toBeInstanceOf(RejectedEventError);
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.OUTPUT_TOO_LARGE });
    expect(await k.messageCount(topic)).toBe(0);
  });

  it('fails at once, with an outcome, when the org id makes no topic name', async () => {
    const run = await runOf({ type: 'KAFKA' }, {}, 'r_contract_name');
    const outcome = await invoker().invoke({ ...run, orgId: 'org with spaces' }, testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.INVOCATION_INVALID });
  });

  it('stops promptly when aborted (shutdown), without an outcome, while the broker cannot be written', async () => {
    // A producer not connected: every write fails as with a broker away, and is retried.
    const away = k.kafka.producer();
    const ac = new AbortController();
    const { ctx } = testContext(ac.signal);
    const t0 = Date.now();
    const pending = invoker(away).invoke(await runOf({ type: 'KAFKA' }, {}, 'r_contract_away'), ctx);
    setTimeout(() => ac.abort(), 300);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
