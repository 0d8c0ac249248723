import { FakeGithub } from '../../src/dev/fake-github';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import type { JsonObject } from '../../src/model/json';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, TestTopics, eventually, testTopics, topicEnv } from '../helpers/kafka';
import { RunStatuses, crashAndRestart as crashAndRestartWith, expectNoRepeat, headOfLine, recordCalls } from '../helpers/no-repeat';
import { spawnRouter, stopped } from '../helpers/processes';
import { tempDir } from '../helpers/cleanup';
import { join } from 'node:path';

const SECRET = 'no-repeat-secret';
const PARTITIONS = 4;
/** How long the backend holds the one slow run of each partition: the kill comes while they are held. */
const HOLD_MS = 10_000;

/**
 * No run invoked twice (issue 33). One slow run at the head of each
 * partition holds back that partition's commit while hundreds behind it
 * finish; the router is killed (SIGKILL) while the slow ones are held, then
 * started again. Only the runs whose call was under way at the kill may be
 * called again.
 */
describe('no run invoked twice', () => {
  const k = new TestKafka();
  const receiver = new WebhookReceiver(SECRET);
  const github = new FakeGithub({ token: 'gh', runDetails: true, stepMs: 200 });
  let topics: TestTopics;
  let statuses: RunStatuses;
  beforeAll(async () => {
    await receiver.start();
    await github.start();
  });
  afterAll(async () => {
    await receiver.close();
    await github.close();
    await k.close();
  });
  beforeEach(async () => {
    topics = testTopics();
    await k.createTopic(topics.trigger, PARTITIONS);
    await k.createTopic(topics.status, PARTITIONS);
    statuses = await RunStatuses.follow(k, topics.status);
  });

  const env = (extra: Record<string, string> = {}) => ({
    ...topicEnv(topics),
    TOPICS_PARTITIONS: String(PARTITIONS),
    SIGNING_SECRET: SECRET,
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_TIMEOUT_MS: String(HOLD_MS * 2),
    GITHUB_API_URL: github.url,
    GITHUB_TOKEN: 'gh',
    GITHUB_POLL_INTERVAL_MS: '100',
    ROUTER_COMMIT_INTERVAL_MS: '50',
    ROUTER_SESSION_TIMEOUT_MS: '6000',
    // A previous caller's grace: a call recorded STARTED is waited for this long (plus 5 s) before it is in doubt.
    ROUTER_SHUTDOWN_GRACE_MS: '2000',
    ...extra,
  });

  const terminal = (runId: string) => statuses.terminal(runId);
  const ended = (ids: string[]) => statuses.ended(ids);
  const delivered = (ids: string[]) => statuses.delivered(ids);
  const expectOneEnd = (ids: string[]) => statuses.expectOneEnd(ids);

  /** Trigger messages: the slow run first on each partition, then the quick ones spread over the partitions. */
  const triggers = (slow: (p: number) => [string, JsonObject], quick: (i: number) => [string, JsonObject], n: number) => headOfLine({ partitions: PARTITIONS, orgId: 'org_once' }, slow, quick, n);

  /** WEBHOOK triggers on `/<tag>-<group>`: one held HOLD_MS at the head of each partition, `n` answered in 5 ms behind; and the calls they get. */
  const heldWebhooks = (tag: string, n: number) => {
    const path = `/${tag}-${topics.group}`;
    const calls = recordCalls(receiver, path);
    const held = triggers(
      (p) => [`r_${topics.group}_slow${p}`, { type: 'WEBHOOK', url: `${receiver.url}${path}?delay=${HOLD_MS}`, synchronized: true }],
      (i) => [`r_${topics.group}_${i}`, { type: 'WEBHOOK', url: `${receiver.url}${path}?delay=5`, synchronized: true }],
      n,
    );
    return { calls, ...held };
  };

  /** Routers (one, killed; then another): see crashAndRestart in ../helpers/no-repeat. */
  const crashAndRestart = (name: string, ready: () => boolean, settleMs: number, done: () => boolean, after?: () => Promise<void>) =>
    crashAndRestartWith((n) => spawnRouter(env(), n), name, ready, settleMs, done, after);

  it('WEBHOOK: after kill -9, no run answered before the kill is called again; repeats are the calls under way, with the same Idempotency-Key', async () => {
    const N = 400;
    const { calls, messages, slowIds, quickIds } = heldWebhooks('once', N);
    await k.produce(topics.trigger, messages);
    // Killed once the quick runs were answered and ended while the slow ones are held.
    const killAt = await crashAndRestart('once-webhook', () => ended(quickIds) && slowIds.every((id) => calls.has(id)), 1_500, () => ended([...quickIds, ...slowIds]));
    const all = [...quickIds, ...slowIds];
    // Every run called; none answered over a second before the kill called again; repeats only the calls under way, with their first key.
    const { answeredEarly, repeated } = expectNoRepeat(calls, { slowIds, quickIds }, killAt, HOLD_MS);
    expectOneEnd(all);
    process.stdout.write(`no-repeat WEBHOOK: ${all.length} runs, ${answeredEarly.length} answered over a second before the kill, ${repeated.length} called again (under way at the kill)\n`);
  }, 180_000);

  it('KAFKA: after kill -9, no run is written to the org topic twice', async () => {
    const path = `/once-k-${topics.group}`;
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_once');
    await k.createTopic(orgTopic, 2);
    const written = new Map<string, number>();
    await k.follow(orgTopic, (m) => written.set(m.key!.toString(), (written.get(m.key!.toString()) ?? 0) + 1));
    const N = 800;
    const { messages, slowIds, quickIds } = triggers(
      (p) => [`r_${topics.group}_slow${p}`, { type: 'WEBHOOK', url: `${receiver.url}${path}?delay=${HOLD_MS}`, synchronized: true }],
      (i) => [`r_${topics.group}_${i}`, { type: 'KAFKA' }],
      N,
    );
    await k.produce(topics.trigger, messages);
    await crashAndRestart(
      'once-kafka',
      () => quickIds.every((id) => written.has(id)) && delivered(quickIds),
      1_500,
      () => ended(slowIds),
      // The restarted router has read past every KAFKA trigger by the time the slow runs (first on their partitions) end.
      () => new Promise((r) => setTimeout(r, 1_000)),
    );
    const twice = quickIds.filter((id) => written.get(id)! > 1);
    expect(twice).toEqual([]);
    expectOneEnd([...quickIds, ...slowIds]);
    process.stdout.write(`no-repeat KAFKA: ${quickIds.length} runs on the org topic once each after the kill\n`);
  }, 180_000);

  it('GITHUB: a dispatch under way at kill -9 is found by its run id and followed, not dispatched again', async () => {
    const dispatches = (runId: string) => github.runs.filter((r) => String(r.inputs.port_context ?? '').includes(`"${runId}"`)).length;
    const method = (extra: JsonObject = {}): JsonObject => ({ type: 'GITHUB', org: 'acme', repo: 'deploys', workflow: `once-${topics.group}.yml`, omitPayload: true, ...extra });
    const N = 40;
    const { messages, slowIds, quickIds } = triggers(
      (p) => [`r_${topics.group}_slow${p}`, method()],
      (i) => [`r_${topics.group}_${i}`, method()],
      N,
    );
    // The slow ones: GitHub creates the run at once and answers the dispatch after HOLD_MS.
    const slow = new Set(slowIds);
    const withHold = messages.map((m) => {
      if (!slow.has(m.key)) return m;
      const event = JSON.parse(m.value) as { payload: { properties: JsonObject } };
      event.payload.properties.answer_after_ms = String(HOLD_MS);
      return { ...m, value: JSON.stringify(event) };
    });
    await k.produce(topics.trigger, withHold);
    await crashAndRestart('once-github', () => delivered(quickIds) && slowIds.every((id) => dispatches(id) === 1), 1_000, () => ended([...quickIds, ...slowIds]));
    const all = [...quickIds, ...slowIds];
    expect(all.filter((id) => dispatches(id) !== 1)).toEqual([]);
    for (const id of all) expect({ id, status: terminal(id)[0]?.status }).toEqual({ id, status: 'SUCCESS' });
    // The slow ones were in doubt, and found: their log says so.
    for (const id of slowIds) expect(statuses.get(id)!.some((u) => /found; following it, not dispatching again/.test(u.log ?? ''))).toBe(true);
    expectOneEnd(all);
  }, 180_000);

  it('recovery interrupted: the restarted router is killed too while its store catches up (past a malformed update of a run); the third calls nothing answered again', async () => {
    const N = 400;
    const { calls, messages, slowIds, quickIds } = heldWebhooks('once-r', N);
    await k.produce(topics.trigger, messages);
    // One store file for all three: the second resumes the first's, the third the second's half-applied one.
    const storeEnv = (extra: Record<string, string> = {}) => env({ RUNS_DB_PATH: join(tempDir('once-recovery-'), 'runs.db'), ...extra });
    const shared = storeEnv();
    const first = spawnRouter(shared, 'once-recovery-1');
    await eventually(() => ended(quickIds) && slowIds.every((id) => calls.has(id)), 'the quick runs ended, the slow ones held', 60_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const killAt = Date.now();
    first.kill('SIGKILL');
    await stopped(first);
    // Updates of other runs, so that catching up takes a while, and a malformed one keyed by a quick run (skipped).
    const FILLER = 40_000;
    const filler = Array.from({ length: FILLER }, (_, i) => {
      const runId = `r_${topics.group}_filler${i}`;
      return { key: runId, value: JSON.stringify({ runId, orgId: 'org_other', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [], externalRunId: null, log: null, invocationType: 'KAFKA', source: 'BACKEND', attempt: 1, at: Date.now() }) };
    });
    filler.splice(FILLER / 2, 0, { key: quickIds[0]!, value: `{"runId": "${quickIds[0]}", "status":` });
    for (let i = 0; i < filler.length; i += 5_000) await k.produce(topics.status, filler.slice(i, i + 5_000));
    // The second dies inside the store's transaction that takes its 20,000th update: mid-catch-up, with the gate still shut.
    const callsBefore = new Map([...calls].map(([id, c]) => [id, c.length]));
    const second = spawnRouter({ ...shared, ACTION_ROUTER_TEST_KILL_AT_UPDATE: '20000' }, 'once-recovery-2');
    await stopped(second);
    expect(second.signalCode).toBe('SIGKILL');
    expect([...calls].filter(([id, c]) => c.length > (callsBefore.get(id) ?? 0))).toEqual([]);
    const third = spawnRouter(shared, 'once-recovery-3');
    try {
      await eventually(() => ended([...quickIds, ...slowIds]), 'every run ended after the second restart', 90_000);
    } finally {
      third.kill('SIGTERM');
      await stopped(third);
    }
    const all = [...quickIds, ...slowIds];
    // Every run called; none answered over a second before the kill called again; repeats only the calls under way, with their first key.
    const { answeredEarly, repeated } = expectNoRepeat(calls, { slowIds, quickIds }, killAt, HOLD_MS);
    expectOneEnd(all);
    process.stdout.write(`no-repeat recovery interrupted: ${answeredEarly.length} answered before the first kill, ${repeated.length} called again (under way at it)\n`);
  }, 240_000);

  it('a rebalance while slow runs hold the partitions: the runs answered behind them are not called again by the new owner', async () => {
    const N = 200;
    const { calls, messages, slowIds, quickIds } = heldWebhooks('once-b', N);
    await k.produce(topics.trigger, messages);
    const a = spawnRouter(env(), 'once-rebalance-a');
    let b: ReturnType<typeof spawnRouter> | undefined;
    try {
      await eventually(() => ended(quickIds) && slowIds.every((id) => calls.has(id)), 'the quick runs ended, the slow ones held', 60_000);
      // A second router joins: partitions move while their heads are held (longer than A's grace), and their commits lag far behind.
      b = spawnRouter(env(), 'once-rebalance-b');
      await eventually(() => ended([...quickIds, ...slowIds]), 'every run ended after the rebalance', 120_000);
    } finally {
      a.kill('SIGTERM');
      b?.kill('SIGTERM');
      await stopped(a);
      if (b) await stopped(b);
    }
    const all = [...quickIds, ...slowIds];
    expect(all.filter((id) => !calls.has(id))).toEqual([]);
    expect(quickIds.filter((id) => calls.get(id)!.length > 1)).toEqual([]);
    for (const id of slowIds) expect(new Set(calls.get(id)!.map((c) => c.key))).toEqual(new Set([id]));
    expectOneEnd(all);
    process.stdout.write(`no-repeat rebalance: ${all.length} runs, slow ones called ${slowIds.map((id) => calls.get(id)!.length).join('/')} times\n`);
  }, 240_000);

  it('two routers in one group, one stopped gracefully under load: no run called twice', async () => {
    const path = `/once-g-${topics.group}`;
    const calls = new Map<string, number>();
    receiver.onRun = (r) => {
      if (r.request.path === path && r.runId) calls.set(r.runId, (calls.get(r.runId) ?? 0) + 1);
    };
    const a = spawnRouter(env(), 'once-graceful-a');
    const b = spawnRouter(env(), 'once-graceful-b');
    const ids: string[] = [];
    try {
      // Paced: 60 runs every 100 ms for 6 s; A is stopped half-way.
      for (let batch = 0; batch < 60; batch++) {
        const messages = Array.from({ length: 10 }, (_, i) => {
          const runId = `r_${topics.group}_${batch}_${i}`;
          ids.push(runId);
          return { key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_once', invocationMethod: { type: 'WEBHOOK', url: `${receiver.url}${path}?delay=200`, synchronized: true } })) };
        });
        await k.produce(topics.trigger, messages);
        if (batch === 30) a.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await stopped(a)).toBe(0);
      await eventually(() => ended(ids), 'every run ended', 90_000);
    } finally {
      b.kill('SIGTERM');
      await stopped(b);
    }
    expect(ids.filter((id) => !calls.has(id))).toEqual([]);
    expect(ids.filter((id) => calls.get(id)! > 1)).toEqual([]);
    expectOneEnd(ids);
  }, 180_000);
});
