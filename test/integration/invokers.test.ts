import type { App } from '../../src/app';
import { AgentIntake } from '../../src/agent/intake';
import { FakeGithub } from '../../src/dev/fake-github';
import { FakeGitlab } from '../../src/dev/fake-gitlab';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import type { JsonObject } from '../../src/model/json';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, TestTopics, json, startApp, testConfig, testTopics } from '../helpers/kafka';

const SECRET = 'shared-secret';

describe('every invocation type through the real broker', () => {
  const k = new TestKafka();
  const webhook = new WebhookReceiver(SECRET);
  const github = new FakeGithub({ token: 'gh', stepMs: 100 });
  const gitlab = new FakeGitlab({ triggerTokens: { 'acme/api': 'trig' }, apiToken: 'gl', stepMs: 100 });
  let topics: TestTopics;
  const apps: App[] = [];
  beforeAll(() => Promise.all([webhook.start(), github.start(), gitlab.start()]));
  afterAll(async () => {
    await Promise.all([webhook.close(), github.close(), gitlab.close()]);
    await k.close();
  });
  beforeEach(() => (topics = testTopics()));
  afterEach(async () => {
    while (apps.length) await apps.pop()!.stop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    ...extra,
    SIGNING_SECRET: SECRET,
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_INITIAL_MS: '20',
    GITHUB_API_URL: github.url,
    GITHUB_TOKEN: 'gh',
    GITHUB_POLL_INTERVAL_MS: '50',
    GITLAB_URL: gitlab.url,
    GITLAB_TRIGGER_TOKEN_acme_api: 'trig',
    GITLAB_API_TOKEN: 'gl',
    GITLAB_POLL_INTERVAL_MS: '50',
  });

  /** Status updates until each of `runIds` has reached a terminal status. */
  const finals = async (runIds: string[]) => {
    const ended = (ms: RunStatusUpdate[]) => runIds.every((id) => ms.some((u) => u.runId === id && u.status !== 'IN_PROGRESS'));
    const msgs = await k.collect(topics.status, (ms) => ended(ms.map((m) => json<RunStatusUpdate>(m))), 30_000);
    return msgs.map((m) => json<RunStatusUpdate>(m));
  };

  it('calls each backend and reports each run to its end, in order', async () => {
    apps.push(await startApp(testConfig(topics, env())));
    const runs: [string, JsonObject, string][] = [
      ['r_wh_sync', { type: 'WEBHOOK', url: `${webhook.url}/sync`, synchronized: true }, 'SUCCESS'],
      ['r_wh_fail', { type: 'WEBHOOK', url: `${webhook.url}/x?status=500`, synchronized: true }, 'FAILURE'],
      ['r_gh', { type: 'GITHUB', org: 'acme', repo: 'api', workflow: 'ci.yml' }, 'SUCCESS'],
      ['r_gl', { type: 'GITLAB', groupName: 'acme', projectName: 'api' }, 'SUCCESS'],
    ];
    await k.produce(topics.trigger, runs.map(([id, method]) => ({ key: id, value: JSON.stringify(samplePortMessage({ runId: id, invocationMethod: method })) })));
    const updates = await finals(runs.map(([id]) => id));
    for (const [id, method, expected] of runs) {
      const mine = updates.filter((u) => u.runId === id);
      expect(mine[0]).toMatchObject({ status: 'IN_PROGRESS', invocationType: method.type });
      expect(mine[mine.length - 1]).toMatchObject({ status: expected });
      // Nothing after the terminal update, and no terminal update twice.
      expect(mine.filter((u) => u.status !== 'IN_PROGRESS')).toHaveLength(1);
    }
    expect(webhook.received.filter((r) => r.runId === 'r_wh_sync' && r.signatureOk)).toHaveLength(1);
    expect(webhook.received.filter((r) => r.runId === 'r_wh_fail').length).toBe(5);
    expect(github.runs.some((r) => JSON.parse(String(r.inputs.port_context)).runId === 'r_gh')).toBe(true);
    expect(gitlab.pipelines.some((p) => JSON.parse(p.variables.port_payload!).context.runId === 'r_gl')).toBe(true);
    const gh = updates.filter((u) => u.runId === 'r_gh');
    expect(gh[gh.length - 1]!.links[0]).toMatch(/actions\/runs\/\d+$/);
    const failure = updates.find((u) => u.runId === 'r_wh_fail' && u.status === 'FAILURE')!;
    expect(failure.summary).toContain('HTTP 500');
    expect(failure.attempt).toBe(5);
  });

  it('without the store: announces a slow call while it runs, and lets a quick async delivery be the first update', async () => {
    // With the store (the default) every WEBHOOK call is announced before it, by its STARTED record (next test).
    apps.push(await startApp(testConfig(topics, env({ RUNS_STORE: 'false' }))));
    const producedAt = Date.now();
    await k.produce(topics.trigger, [
      { value: JSON.stringify(samplePortMessage({ runId: 'r_quick', invocationMethod: { type: 'WEBHOOK', url: `${webhook.url}/quick` } })) },
      { value: JSON.stringify(samplePortMessage({ runId: 'r_slow', invocationMethod: { type: 'WEBHOOK', url: `${webhook.url}/slow?delay=1600` } })) },
    ]);
    const updates = (await k.collect(topics.status, (ms) => ms.filter((m) => json<RunStatusUpdate>(m).log?.includes('delivered')).length >= 2)).map((m) =>
      json<RunStatusUpdate>(m),
    );
    const quick = updates.filter((u) => u.runId === 'r_quick');
    expect(quick.map((u) => u.log)).toEqual([expect.stringMatching(/delivered: HTTP 200$/)]);
    const slow = updates.filter((u) => u.runId === 'r_slow');
    expect(slow.map((u) => u.log)).toEqual([expect.stringMatching(/^Routing WEBHOOK run to POST/), expect.stringMatching(/delivered: HTTP 200$/)]);
    // Announced once the call had run for a while, not at once (load only delays it).
    expect(slow[0]!.at - producedAt).toBeGreaterThanOrEqual(900);
  });

  it('with the store: every call is recorded STARTED before it, and its outcome ENDED', async () => {
    apps.push(await startApp(testConfig(topics, env())));
    await k.produce(topics.trigger, [
      { value: JSON.stringify(samplePortMessage({ runId: 'r_rec_wh', invocationMethod: { type: 'WEBHOOK', url: `${webhook.url}/quick` } })) },
      { value: JSON.stringify(samplePortMessage({ runId: 'r_rec_k', invocationMethod: { type: 'KAFKA' } })) },
    ]);
    const updates = (await k.collect(topics.status, (ms) => ms.filter((m) => json<RunStatusUpdate>(m).call === 'ENDED').length >= 2)).map((m) => json<RunStatusUpdate>(m));
    const wh = updates.filter((u) => u.runId === 'r_rec_wh');
    // STARTED is bookkeeping, with no log line: an async webhook's run log is as without the store (its delivery).
    expect(wh.map((u) => [u.status, u.call, u.log])).toEqual([
      ['IN_PROGRESS', 'STARTED', null],
      ['IN_PROGRESS', 'ENDED', expect.stringMatching(/delivered: HTTP 200$/)],
    ]);
    // A Kafka write records its outcome only: in doubt it is written again either way.
    expect(updates.filter((u) => u.runId === 'r_rec_k').map((u) => u.call)).toEqual(['ENDED']);
  });

  it('agent mode: the router hands agent runs to the org topic and the agent performs them', async () => {
    const config = testConfig(topics, env());
    apps.push(await startApp(config));
    const agentConfig = testConfig({ ...topics, group: `${topics.group}-a` }, env());
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_agent');
    await k.createTopic(orgTopic, 2);
    apps.push(await startApp(agentConfig, { mode: 'agent', orgId: 'org_agent', intake: (d) => new AgentIntake(d.config, 'org_agent') }));
    const agentRun = samplePortMessage({ runId: 'r_agent', orgId: 'org_agent', invocationMethod: { type: 'WEBHOOK', agent: true, url: `${webhook.url}/agent`, synchronized: true } });
    const kafkaRun = samplePortMessage({ runId: 'r_plain_kafka', orgId: 'org_agent', invocationMethod: { type: 'KAFKA' } });
    await k.produce(topics.trigger, [{ value: JSON.stringify(agentRun) }, { value: JSON.stringify(kafkaRun) }]);
    // A forged run written straight to the org topic, with a bad signature.
    const forged = { ...samplePortMessage({ runId: 'r_forged', orgId: 'org_agent', invocationMethod: { type: 'WEBHOOK', agent: true, url: `${webhook.url}/agent` } }), headers: { 'X-Port-Signature': 'v1,AAAA', 'X-Port-Timestamp': String(Math.floor(Date.now() / 1000)) } };
    await k.produce(orgTopic, [{ key: 'r_forged', value: JSON.stringify(forged) }]);

    const updates = await finals(['r_agent', 'r_forged']);
    // At-least-once: a rebalance of the agent's new group may redeliver, so
    // look at the first updates (their order is what matters).
    const agentUpdates = updates.filter((u) => u.runId === 'r_agent');
    if (agentUpdates.length !== 3) process.stdout.write(`agent run updates: ${JSON.stringify(agentUpdates.map((u) => [u.status, u.log ?? u.summary]))}\n`);
    expect(agentUpdates.slice(0, 3).map((u) => u.status)).toEqual(['IN_PROGRESS', 'IN_PROGRESS', 'SUCCESS']);
    const [routed, calling] = updates.filter((u) => u.runId === 'r_agent');
    expect(routed!.log).toContain('for the WEBHOOK agent');
    expect(calling!.log).toContain('Routing WEBHOOK run to POST');
    expect(updates.find((u) => u.runId === 'r_forged')).toMatchObject({ status: 'FAILURE', statusLabel: 'SIGNATURE_INVALID' });
    const calls = webhook.received.filter((r) => r.request.path === '/agent');
    expect([...new Set(calls.map((c) => c.runId))]).toEqual(['r_agent']);
    expect(calls[0]!.signatureOk).toBe(true);
    const dlq = await k.collect(topics.dlq, (ms) => ms.length >= 1);
    expect(dlq.map((m) => m.headers?.['x-dlq-reason']?.toString())).toEqual(['SIGNATURE_INVALID']);
    // The plain KAFKA run is left to its backend: no call, no dead letter, IN_PROGRESS only.
    const plain = (await k.collect(topics.status, (ms) => ms.some((m) => m.key?.toString() === 'r_plain_kafka'))).map((m) => json<RunStatusUpdate>(m));
    expect(plain.filter((u) => u.runId === 'r_plain_kafka').map((u) => u.status)).toEqual(['IN_PROGRESS']);
  });
});
