import type { App } from '../../src/app';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import type { JsonObject } from '../../src/model/json';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, TestTopics, eventually, json, startApp, testConfig, testTopics } from '../helpers/kafka';
import { spawnRouter, stopped } from '../helpers/processes';

/** Per run id: how often it reached its target, and its status updates. */
class Ledger {
  readonly delivered = new Map<string, number>();
  readonly statuses = new Map<string, RunStatusUpdate[]>();
  deliver(runId: string) {
    this.delivered.set(runId, (this.delivered.get(runId) ?? 0) + 1);
  }
  status(u: RunStatusUpdate) {
    const list = this.statuses.get(u.runId) ?? [];
    list.push(u);
    this.statuses.set(u.runId, list);
  }
  final(runId: string): RunStatusUpdate | undefined {
    return this.statuses.get(runId)?.filter((u) => u.status !== 'IN_PROGRESS').pop();
  }
  duplicates(): number {
    let n = 0;
    for (const c of this.delivered.values()) n += c - 1;
    return n;
  }
}

const SECRET = 'reliability-secret';

describe('reliability', () => {
  const k = new TestKafka();
  const receiver = new WebhookReceiver(SECRET);
  let topics: TestTopics;
  let ledger: Ledger;
  const apps: App[] = [];
  beforeAll(() => receiver.start());
  afterAll(async () => {
    await receiver.close();
    await k.close();
  });
  beforeEach(() => {
    topics = testTopics();
    ledger = new Ledger();
  });
  afterEach(async () => {
    while (apps.length) await apps.pop()!.stop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    TRIGGER_TOPIC: topics.trigger,
    STATUS_TOPIC: topics.status,
    DLQ_TOPIC: topics.dlq,
    ORG_TOPIC_TEMPLATE: topics.orgTemplate,
    ROUTER_GROUP_ID: topics.group,
    TOPICS_PARTITIONS: '4',
    SIGNING_SECRET: SECRET,
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_INITIAL_MS: '50',
    ROUTER_COMMIT_INTERVAL_MS: '50',
    ROUTER_SESSION_TIMEOUT_MS: '6000',
    ...extra,
  });

  /** Tracks org-topic deliveries, webhook deliveries and status updates of this test's runs. */
  async function track(orgId: string, webhookPath: string): Promise<void> {
    receiver.onRun = (r) => {
      if (r.request.path === webhookPath && r.runId && r.signatureOk) ledger.deliver(r.runId);
    };
    await k.createTopic(topics.orgTemplate.replace('{orgId}', orgId), 2);
    await k.follow(topics.orgTemplate.replace('{orgId}', orgId), (m) => ledger.deliver(m.key!.toString()));
    await k.createTopic(topics.status, 4);
    await k.follow(topics.status, (m) => ledger.status(json<RunStatusUpdate>(m)));
  }

  /** `n` runs: even ones KAFKA, odd ones synchronized WEBHOOK. */
  function mixedRuns(n: number, orgId: string, webhookPath: string) {
    return Array.from({ length: n }, (_, i) => {
      const runId = `r_${topics.group}_${i}`;
      const method: JsonObject = i % 2 === 0 ? { type: 'KAFKA' } : { type: 'WEBHOOK', url: `${receiver.url}${webhookPath}?delay=5`, synchronized: true };
      return { runId, expected: i % 2 === 0 ? 'IN_PROGRESS' : 'SUCCESS', value: JSON.stringify(samplePortMessage({ runId, orgId, invocationMethod: method })) };
    });
  }

  function expectAllDone(runs: { runId: string; expected: string }[]) {
    const missing = runs.filter((r) => !ledger.delivered.has(r.runId)).map((r) => r.runId);
    expect(missing).toEqual([]);
    for (const r of runs) {
      const got = r.expected === 'IN_PROGRESS' ? ledger.statuses.get(r.runId)?.[0]?.status : ledger.final(r.runId)?.status;
      expect({ runId: r.runId, status: got }).toEqual({ runId: r.runId, status: r.expected });
    }
  }

  const allDone = (runs: { runId: string; expected: string }[]) =>
    runs.every((r) => ledger.delivered.has(r.runId) && (r.expected === 'IN_PROGRESS' ? ledger.statuses.has(r.runId) : ledger.final(r.runId)));

  it('kill -9 mid-stream: every run reaches its target and status; duplicates stay within the in-flight bound', async () => {
    const N = 3000;
    const MAX_IN_FLIGHT = 200;
    const path = `/crash-${topics.group}`;
    await k.createTopic(topics.trigger, 4);
    await track('org_crash', path);
    const runs = mixedRuns(N, 'org_crash', path);
    await k.produce(topics.trigger, runs.map((r) => ({ key: r.runId, value: r.value })));
    const routerEnv = env({ ROUTER_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), ROUTER_MAX_IN_FLIGHT_PER_PARTITION: '50' });
    const first = spawnRouter(routerEnv, 'crash-1');
    await eventually(() => ledger.delivered.size >= N / 3, 'a third of the runs delivered', 60_000);
    first.kill('SIGKILL');
    await stopped(first);
    const deliveredAtCrash = ledger.delivered.size;
    const second = spawnRouter(routerEnv, 'crash-2');
    try {
      await eventually(() => allDone(runs), 'every run delivered with its status', 90_000);
    } finally {
      second.kill('SIGTERM');
      expect(await stopped(second)).toBe(0);
    }
    expectAllDone(runs);
    expect(deliveredAtCrash).toBeLessThan(N);
    // Redelivered: what was in flight at the crash plus what finished since
    // the last commit (ROUTER_COMMIT_INTERVAL_MS = 50 ms).
    const dups = ledger.duplicates();
    process.stdout.write(`crash test: ${N} runs, ${dups} duplicate deliveries (in-flight bound ${MAX_IN_FLIGHT})\n`);
    expect(dups).toBeLessThanOrEqual(MAX_IN_FLIGHT * 2);
  }, 180_000);

  it('slow and failing targets do not hold up the other runs of their partition', async () => {
    await k.createTopic(topics.trigger, 1);
    const path = `/slow-${topics.group}`;
    await track('org_slow', path);
    receiver.failNext(/\/flaky$/, { status: 500, body: { error: 'try again' } });
    const method = (url: string) => ({ type: 'WEBHOOK', url, synchronized: true });
    const special = [
      { runId: 'r_hang', value: JSON.stringify(samplePortMessage({ runId: 'r_hang', orgId: 'org_slow', invocationMethod: method(`${receiver.url}/hang?delay=60000`) })) },
      { runId: 'r_flaky', value: JSON.stringify(samplePortMessage({ runId: 'r_flaky', orgId: 'org_slow', invocationMethod: method(`${receiver.url}/flaky`) })) },
      { runId: 'r_bad', value: JSON.stringify(samplePortMessage({ runId: 'r_bad', orgId: 'org_slow', invocationMethod: method(`${receiver.url}/bad?status=400`) })) },
    ];
    const normal = Array.from({ length: 50 }, (_, i) => {
      const runId = `r_normal_${i}`;
      return { runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_slow', invocationMethod: method(`${receiver.url}${path}`) })) };
    });
    await k.produce(topics.trigger, [...special, ...normal].map((r) => ({ key: r.runId, value: r.value })));
    apps.push(await startApp(testConfig(topics, { ...env(), WEBHOOK_TIMEOUT_MS: '1500', WEBHOOK_MAX_ATTEMPTS: '2', LOG_LEVEL: 'silent', HTTP_PORT: '0' })));
    await eventually(() => ['r_hang', 'r_flaky', 'r_bad', ...normal.map((r) => r.runId)].every((id) => ledger.final(id)), 'every run ended', 30_000);
    const hang = ledger.final('r_hang')!;
    expect(hang).toMatchObject({ status: 'FAILURE', statusLabel: 'TIMEOUT', attempt: 2 });
    expect(ledger.final('r_flaky')).toMatchObject({ status: 'SUCCESS', attempt: 2 });
    expect(ledger.final('r_bad')).toMatchObject({ status: 'FAILURE', statusLabel: 'HTTP 400', attempt: 1 });
    // Every normal run behind the hanging one, in the same partition, ended first.
    for (const r of normal) {
      expect(ledger.final(r.runId)!.status).toBe('SUCCESS');
      expect(ledger.final(r.runId)!.at).toBeLessThan(hang.at);
    }
  }, 60_000);

  it('a call longer than the session timeout costs neither group membership nor a redelivery', async () => {
    await k.createTopic(topics.trigger, 2);
    const path = `/long-${topics.group}`;
    await track('org_long', path);
    const long = { runId: 'r_long', value: JSON.stringify(samplePortMessage({ runId: 'r_long', orgId: 'org_long', invocationMethod: { type: 'WEBHOOK', url: `${receiver.url}${path}?delay=9000`, synchronized: true } })) };
    const quick = Array.from({ length: 20 }, (_, i) => ({ runId: `r_q${i}`, value: JSON.stringify(samplePortMessage({ runId: `r_q${i}`, orgId: 'org_long' })) }));
    const app = await startApp(testConfig(topics, { ...env(), ROUTER_SESSION_TIMEOUT_MS: '6000', WEBHOOK_TIMEOUT_MS: '20000', LOG_LEVEL: 'silent', HTTP_PORT: '0' }));
    apps.push(app);
    await k.produce(topics.trigger, [long, ...quick].map((r) => ({ key: r.runId, value: r.value })));
    const admin = k.kafka.admin();
    await admin.connect();
    const generations = new Set<string>();
    const watch = setInterval(() => {
      admin.describeGroups([topics.group]).then((d) => {
        const g = d.groups[0];
        if (g?.state === 'Stable') generations.add(g.members.map((m) => m.memberId).join(','));
      }, () => undefined);
    }, 500);
    try {
      await eventually(() => ledger.final('r_long') !== undefined, 'the long run to end', 30_000);
    } finally {
      clearInterval(watch);
      await admin.disconnect();
    }
    expect(ledger.final('r_long')).toMatchObject({ status: 'SUCCESS', attempt: 1 });
    expect(ledger.delivered.get('r_long')).toBe(1);
    for (const q of quick) expect(ledger.delivered.get(q.runId)).toBe(1);
    // One member id throughout: never expelled and rejoined under a new one.
    expect(generations.size).toBe(1);
  }, 60_000);

  it('poison at volume: every input ends routed or dead-lettered, and the counts reconcile exactly', async () => {
    const N = 2000;
    await k.createTopic(topics.trigger, 4);
    await k.createTopic(topics.orgTemplate.replace('{orgId}', 'org_poison'), 2);
    const messages = Array.from({ length: N }, (_, i) => {
      const runId = `r_poison_${i}`;
      switch (i % 8) {
        case 1: return { key: runId, value: `garbage ${i}` };
        case 3: return { key: runId, value: JSON.stringify({ ...samplePortMessage({ runId, orgId: 'org_poison' }), payload: 42 }) };
        case 5: return { key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_poison', invocationMethod: { type: 'CARRIER_PIGEON' } })) };
        default: return { key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_poison' })) };
      }
    });
    await k.produce(topics.trigger, messages);
    apps.push(await startApp(testConfig(topics, { ...env(), LOG_LEVEL: 'silent', HTTP_PORT: '0' })));
    // Every record, not every key: a run routed or dead-lettered twice counts twice.
    const routed: string[] = [];
    const dead: { key: string; reason: string }[] = [];
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_poison');
    await k.follow(orgTopic, (m) => routed.push(m.key!.toString()));
    await k.follow(topics.dlq, (m) => dead.push({ key: m.key!.toString(), reason: m.headers!['x-dlq-reason']!.toString() }));
    // Done: every trigger's outcome acknowledged (committed), and each output topic read to its end.
    await eventually(
      async () =>
        routed.length + dead.length >= N &&
        (await k.committedAll(topics.group, topics.trigger)) &&
        routed.length === (await k.messageCount(orgTopic)) &&
        dead.length === (await k.messageCount(topics.dlq)),
      'every message accounted for',
      60_000,
    );
    expect(routed).toHaveLength((N * 5) / 8);
    expect(dead).toHaveLength((N * 3) / 8);
    expect(new Set([...routed, ...dead.map((d) => d.key)]).size).toBe(N);
    const reasons: Record<string, number> = {};
    for (const d of dead) reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
    expect(reasons).toEqual({ DECODE_FAILED: N / 8, SCHEMA_INVALID: N / 8, UNKNOWN_INVOCATION: N / 8 });
  }, 90_000);
});
