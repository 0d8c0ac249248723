import type { App } from '../../src/app';
import { samplePortMessage } from '../../src/sample';
import { ApiClient, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/** Port's agent in polling mode (STREAMER_NAME=POLLING) takes agent runs over HTTP. */
describe("Port's agent over HTTP (AGENT_DELIVERY=http)", () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  const kafka = new TestKafka();

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp(testConfig(topics, apiEnv({ AGENT_DELIVERY: 'http', AGENT_CLAIM_SECONDS: '2' })));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
  });

  async function agentRun(runId: string): Promise<void> {
    const msg = samplePortMessage({
      runId,
      orgId: 'org_acme',
      invocationMethod: { type: 'WEBHOOK', agent: true, url: 'http://internal.acme/deploy', method: 'PUT', synchronized: true, headers: { 'X-Team': 'platform' } },
    });
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(msg) }]);
    await eventually(() => app.runs!.store.getRun(runId)?.agentPayload != null, `${runId} waiting for an agent`);
  }

  const claim = (client: 'acme-agent' | 'acme-ci' | 'globex-ci') =>
    api.as(client, 'POST', '/v1/actions/runs/claim-pending', { installationId: 'port-agent-1', limit: 10, invocationMethod: 'WEBHOOK' });

  test('claim-pending, ack, then the agent reports: each run goes to one agent', async () => {
    const runId = 'r_poll_one';
    await agentRun(runId);
    const claimed = await claim('acme-agent');
    expect(claimed.status).toBe(200);
    const runs = claimed.body.runs as { id: string; payload: Record<string, unknown> }[];
    expect(runs.map((r) => r.id)).toEqual([runId]);
    expect(runs[0]!.payload).toMatchObject({ type: 'WEBHOOK', agent: true, url: 'http://internal.acme/deploy', method: 'PUT', synchronized: true, headers: { 'X-Team': 'platform' } });
    expect(runs[0]!.payload.body).toMatchObject({ context: { runId }, payload: { action: { invocationMethod: { type: 'WEBHOOK', agent: true } } } });
    // Claimed: nobody else is handed it, in this org or another.
    expect((await claim('acme-ci')).body.runs).toEqual([]);
    expect((await claim('globex-ci')).body.runs).toEqual([]);
    // Only the claimer's ack counts.
    expect((await api.as('acme-ci', 'PATCH', '/v1/actions/runs/ack', { runIds: [runId] })).body).toEqual({ ok: true, ackedCount: 0 });
    expect((await api.as('acme-agent', 'PATCH', '/v1/actions/runs/ack', { runIds: [runId] })).body).toEqual({ ok: true, ackedCount: 1 });
    // Acknowledged: it never lapses back. A run claimed later and not acknowledged shows when the claim time has passed.
    const lapsing = 'r_poll_lapsing';
    await agentRun(lapsing);
    expect(((await claim('acme-agent')).body.runs as { id: string }[]).map((r) => r.id)).toEqual([lapsing]);
    let again: { id: string }[] = [];
    await eventually(async () => (again = (await claim('acme-ci')).body.runs as { id: string }[]).length > 0, 'the unacknowledged claim lapsed', 15_000);
    expect(again.map((r) => r.id)).toEqual([lapsing]);
    expect((await api.as('acme-ci', 'PATCH', '/v1/actions/runs/ack', { runIds: [lapsing] })).body).toEqual({ ok: true, ackedCount: 1 });
    expect((await claim('acme-ci')).body.runs).toEqual([]);
    expect((await api.as('acme-agent', 'POST', '/v1/workflows/runs/claim-pending', { installationId: 'port-agent-1', limit: 10 })).body).toEqual({ ok: true, nodeRuns: [] });
    expect((await api.as('acme-agent', 'PATCH', '/v1/organization', { settings: { portAgentStreamerName: 'POLLING' } })).status).toBe(200);
    await api.as('acme-agent', 'PATCH', `/v1/actions/runs/${runId}/response`, { response: { ok: 1 } });
    const done = await api.as('acme-agent', 'PATCH', `/v1/actions/runs/${runId}`, { status: 'SUCCESS' });
    expect(done.body.run).toMatchObject({ status: 'SUCCESS', response: { ok: 1 } });
  });

  test('two agents claiming at once: the run goes to exactly one; an unacknowledged claim lapses', async () => {
    const runId = 'r_poll_race';
    await agentRun(runId);
    const [a, b] = await Promise.all([claim('acme-agent'), claim('acme-ci')]);
    const winners = [a, b].filter((r) => (r.body.runs as unknown[]).length === 1);
    expect(winners).toHaveLength(1);
    // Nobody acknowledged it: after AGENT_CLAIM_SECONDS it is handed out again.
    const claimedAt = Date.now();
    let again: { id: string }[] = [];
    await eventually(async () => (again = (await claim('acme-ci')).body.runs as { id: string }[]).length > 0, 'the claim lapsed', 15_000);
    expect(again.map((r) => r.id)).toEqual([runId]);
    // Not before the claim time (AGENT_CLAIM_SECONDS=2).
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(1_900);
  });

  test('bad claims get the envelope', async () => {
    expect((await api.call('POST', '/v1/actions/runs/claim-pending', { body: { limit: 1 } })).status).toBe(401);
    expect((await api.as('acme-agent', 'POST', '/v1/actions/runs/claim-pending', { limit: 'ten' })).status).toBe(422);
    expect((await api.as('acme-agent', 'PATCH', '/v1/actions/runs/ack', { runIds: 'r_1' })).status).toBe(422);
  });
});
