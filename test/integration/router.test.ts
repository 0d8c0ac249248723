import { tempDir } from '../helpers/cleanup';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { Writable } from 'node:stream';
import { App } from '../../src/app';
import { createLogger } from '../../src/log';
import { verifyPortSignature } from '../../src/invokers/sign';
import type { Json } from '../../src/model/json';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, TestTopics, eventually, json, startApp, testConfig, testTopics } from '../helpers/kafka';

const header = (m: KafkaMessage, name: string) => m.headers?.[name]?.toString();

describe('router on a real broker', () => {
  const k = new TestKafka();
  let topics: TestTopics;
  let app: App | null = null;
  beforeEach(() => (topics = testTopics()));
  afterEach(async () => {
    await app?.stop();
    app = null;
  });
  afterAll(() => k.close());

  it('routes a Port KAFKA run to the org topic byte for byte, signed, and reports IN_PROGRESS', async () => {
    app = await startApp(testConfig(topics, { SIGNING_SECRET: 'org-secret' }));
    const original = samplePortMessage({ runId: 'r_kafka1', orgId: 'org_acme', invocationMethod: { type: 'KAFKA' } });
    await k.produce(topics.trigger, [{ key: 'r_kafka1', value: JSON.stringify(original) }]);

    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_acme');
    const [out] = await k.collect(orgTopic, (ms) => ms.length >= 1);
    expect(out).toBeDefined();
    expect(out!.key!.toString()).toBe('r_kafka1');
    const body = out!.value!.toString('utf8');
    const { headers: inBody, ...rest } = JSON.parse(body) as Record<string, unknown>;
    // Port's message, unchanged, plus the agent-style signature block at the end.
    expect(JSON.stringify(rest)).toBe(JSON.stringify(original));
    expect(Object.keys(inBody as object)).toEqual(['X-Port-Signature', 'X-Port-Timestamp']);
    expect(header(out!, 'x-run-id')).toBe('r_kafka1');
    expect(verifyPortSignature('org-secret', out!.value!, header(out!, 'x-port-timestamp'), header(out!, 'x-port-signature'))).toEqual({ ok: true });

    const [status] = await k.collect(topics.status, (ms) => ms.length >= 1);
    expect(status!.key!.toString()).toBe('r_kafka1');
    expect(json<RunStatusUpdate>(status!)).toMatchObject({
      runId: 'r_kafka1',
      orgId: 'org_acme',
      action: 'deploy_service',
      status: 'IN_PROGRESS',
      invocationType: 'KAFKA',
      source: 'ROUTER',
      attempt: 1,
      log: `Routed to Kafka topic ${orgTopic}`,
    });
    expect(typeof json<RunStatusUpdate>(status!).at).toBe('number');
  });

  it('routes the router’s own ActionRun JSON form too', async () => {
    app = await startApp(testConfig(topics));
    const run = { runId: 'r_own', orgId: 'org_own', action: 'scale', triggeredAt: new Date().toISOString(), invocationMethod: { type: 'KAFKA' }, properties: { replicas: 2 } };
    await k.produce(topics.trigger, [{ value: JSON.stringify(run) }]);
    const [out] = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_own'), (ms) => ms.length >= 1);
    expect(json(out!)).toMatchObject({ action: 'scale', context: { runId: 'r_own' }, payload: { properties: { replicas: 2 } } });
  });

  it('dead-letters every class of bad input unchanged, with reason headers, and fails runs it can name', async () => {
    const dir = tempDir('actions-');
    writeFileSync(
      join(dir, 'deploy.json'),
      JSON.stringify({
        identifier: 'deploy_service',
        trigger: 'DAY-2',
        userInputs: { properties: { version: { type: 'string' } }, required: ['version'] },
        invocationMethod: { type: 'KAFKA' },
      }),
    );
    app = await startApp(testConfig(topics, { ACTIONS_PATH: dir }));
    const good = (runId: string, over: (m: Record<string, unknown>) => void = () => undefined) => {
      const m = samplePortMessage({ runId, properties: { version: '1' } }) as Record<string, unknown>;
      over(m);
      return JSON.stringify(m);
    };
    const cases: { value: string; reason: string; runId?: string }[] = [
      { value: 'this is not json', reason: 'DECODE_FAILED' },
      { value: good('x', (m) => delete (m.context as Record<string, unknown>).runId), reason: 'MISSING_RUN_ID' },
      { value: good('r_noorg', (m) => delete ((m.trigger as Record<string, Record<string, unknown>>).by as Record<string, unknown>).orgId), reason: 'MISSING_ORG_ID', runId: 'r_noorg' },
      { value: good('r_schema', (m) => ((m.payload as Record<string, unknown>).censoredProperties = 'nope')), reason: 'SCHEMA_INVALID', runId: 'r_schema' },
      { value: good('r_unknown', (m) => (m.action = 'not_in_catalog')), reason: 'UNKNOWN_ACTION', runId: 'r_unknown' },
      { value: JSON.stringify(samplePortMessage({ runId: 'r_inputs', properties: {} })), reason: 'INPUT_INVALID', runId: 'r_inputs' },
      // Run ids the API could never name: dead-lettered with their org, and no run is made of them.
      ...['r_nul\u0000x', 'r_line\nx', '../r_up', 'r_' + 'x'.repeat(5_000), '-r_dash', 'r sp', 'r_\u00e9'].map((runId) => ({ value: good(runId), reason: 'INVALID_RUN_ID' })),
    ];
    await k.produce(topics.trigger, cases.map((c, i) => ({ key: `key-${i}`, value: c.value, headers: { 'x-origin': `case-${i}` } })));
    const dlq = await k.collect(topics.dlq, (ms) => ms.length >= cases.length);
    expect(dlq).toHaveLength(cases.length);
    for (const [i, c] of cases.entries()) {
      const m = dlq.find((d) => d.key?.toString() === `key-${i}`)!;
      expect(m).toBeDefined();
      expect(m.value!.toString()).toBe(c.value);
      expect(header(m, 'x-origin')).toBe(`case-${i}`);
      expect(header(m, 'x-dlq-reason')).toBe(c.reason);
      expect(header(m, 'x-dlq-error')).toBeTruthy();
      expect(header(m, 'x-dlq-source-topic')).toBe(topics.trigger);
      expect(Number(header(m, 'x-dlq-source-partition'))).toBeGreaterThanOrEqual(0);
      expect(Number(header(m, 'x-dlq-source-offset'))).toBeGreaterThanOrEqual(0);
      expect(Number.isNaN(Date.parse(header(m, 'x-dlq-at')!))).toBe(false);
    }
    const named = cases.filter((c) => c.runId);
    const statuses = (await k.collect(topics.status, (ms) => ms.length >= named.length)).map((m) => json<RunStatusUpdate>(m));
    for (const c of named) {
      const s = statuses.find((u) => u.runId === c.runId);
      expect(s).toMatchObject({ status: 'FAILURE', statusLabel: c.reason, source: 'ROUTER' });
      expect(s!.summary).toContain(c.reason);
    }
    expect(statuses.find((s) => s.runId === 'r_noorg')!.orgId).toBeNull();
    expect(statuses).toHaveLength(named.length);
    for (const [i, c] of cases.entries()) {
      if (c.reason !== 'INVALID_RUN_ID') continue;
      const m = dlq.find((d) => d.key?.toString() === `key-${i}`)!;
      expect(header(m, 'x-dlq-org-id')).toBe('org_demo');
      expect(header(m, 'x-dlq-run-id')).toBeUndefined();
      // The error names the rule, never the id itself.
      expect(header(m, 'x-dlq-error')).toMatch(/a run id is 1 to 128 letters/);
      expect(header(m, 'x-dlq-error')!.length).toBeLessThan(300);
    }
  });

  it('events nested past the JSON depth limit are dead-lettered SCHEMA_INVALID with their org and run id, and their runs end FAILURE', async () => {
    app = await startApp(testConfig(topics));
    const deep = (depth: number): Json => {
      let v: Json = 'bottom';
      for (let i = 0; i < depth; i++) v = i % 2 ? { k: v } : [v];
      return v;
    };
    const port = (runId: string, depth: number) => JSON.stringify(samplePortMessage({ runId, orgId: 'org_deep', invocationMethod: { type: 'KAFKA' }, properties: { tree: deep(depth) } }));
    // The router's own form as text: JSON.stringify itself cannot write 10,000 levels.
    const own = (runId: string, depth: number) =>
      `{"runId":"${runId}","orgId":"org_deep","action":"scale","triggeredAt":"${new Date().toISOString()}","invocationMethod":{"type":"KAFKA"},"properties":{"tree":${'['.repeat(depth)}1${']'.repeat(depth)}}}`;
    const cases = [
      { runId: 'r_deep_port', value: port('r_deep_port', 1_000) },
      { runId: 'r_deep_own', value: own('r_deep_own', 10_000) },
      { runId: 'r_deep_just', value: own('r_deep_just', 64) },
    ];
    const fine = { runId: 'r_deep_fine', value: own('r_deep_fine', 50) };
    await k.produce(topics.trigger, [...cases, fine].map((c) => ({ key: c.runId, value: c.value })));
    const dlq = await k.collect(topics.dlq, (ms) => ms.length >= cases.length);
    expect(dlq).toHaveLength(cases.length);
    for (const c of cases) {
      const m = dlq.find((d) => header(d, 'x-dlq-run-id') === c.runId)!;
      expect(m).toBeDefined();
      expect(header(m, 'x-dlq-reason')).toBe('SCHEMA_INVALID');
      expect(header(m, 'x-dlq-org-id')).toBe('org_deep');
      expect(header(m, 'x-dlq-error')).toContain('nested deeper than 64 levels');
      expect(m.value!.toString()).toBe(c.value);
    }
    const statuses = (await k.collect(topics.status, (ms) => ms.length >= cases.length + 1)).map((m) => json<RunStatusUpdate>(m));
    for (const c of cases) expect(statuses.find((u) => u.runId === c.runId)).toMatchObject({ status: 'FAILURE', statusLabel: 'SCHEMA_INVALID', orgId: 'org_deep' });
    expect(statuses.find((u) => u.runId === 'r_deep_fine')).toMatchObject({ status: 'IN_PROGRESS' });
  });

  it('stops cleanly after its consumer is gone (a crash kafkajs will not restart): no throw, and runs routed before it stay committed', async () => {
    app = await startApp(testConfig(topics));
    await k.produce(topics.trigger, [{ key: 'r_before_crash', value: JSON.stringify(samplePortMessage({ runId: 'r_before_crash', orgId: 'org_crash', invocationMethod: { type: 'KAFKA' } })) }]);
    await k.collect(topics.orgTemplate.replace('{orgId}', 'org_crash'), (ms) => ms.length >= 1);
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'the routed run committed');
    // What kafkajs leaves after a crash it does not restart: no consumer group to pause or commit through.
    await (app.router as unknown as { consumer: { stop(): Promise<void> } }).consumer.stop();
    const stopping = app.stop();
    app = null;
    await expect(stopping).resolves.toBeUndefined();
  });

  it('an event whose run id is another org’s run is dead-lettered RUN_ID_CONFLICT and touches nothing of that run', async () => {
    app = await startApp(testConfig(topics));
    const store = app.runs!.store;
    const theirs = ['r_conflict_port', 'r_conflict_own', 'r_conflict_done'];
    await k.produce(topics.trigger, theirs.map((runId) => ({ key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_b', invocationMethod: { type: 'KAFKA' } })) })));
    await eventually(() => theirs.every((id) => store.getRun(id)?.status === 'IN_PROGRESS'), 'org_b’s runs in the store');
    // One of them has ended already.
    await k.produce(topics.status, [{ key: 'r_conflict_done', value: JSON.stringify({ runId: 'r_conflict_done', orgId: 'org_b', action: 'deploy_service', status: 'SUCCESS', statusLabel: 'done', summary: null, links: [], externalRunId: null, log: null, invocationType: 'KAFKA', source: 'BACKEND', attempt: 1, at: Date.now() }) }]);
    await eventually(() => store.getRun('r_conflict_done')?.status === 'SUCCESS', 'org_b’s ended run');
    const before = Object.fromEntries(theirs.map((id) => [id, { run: store.getRun(id), timeline: store.updates(id).length }]));

    // Org A names them: as Port's message, as the router's own form, and with a webhook that must never be called.
    const ownForm = { runId: 'r_conflict_own', orgId: 'org_a', action: 'scale', triggeredAt: new Date().toISOString(), invocationMethod: { type: 'KAFKA' }, properties: {} };
    const attempts = [
      JSON.stringify(samplePortMessage({ runId: 'r_conflict_port', orgId: 'org_a', invocationMethod: { type: 'KAFKA' } })),
      JSON.stringify(ownForm),
      JSON.stringify(samplePortMessage({ runId: 'r_conflict_done', orgId: 'org_a', invocationMethod: { type: 'WEBHOOK', url: 'http://127.0.0.1:9/never' } })),
    ];
    const mine = JSON.stringify(samplePortMessage({ runId: 'r_conflict_mine', orgId: 'org_a', invocationMethod: { type: 'KAFKA' } }));
    await k.produce(topics.trigger, [...attempts.map((value, i) => ({ key: `conflict-${i}`, value })), { key: 'r_conflict_mine', value: mine }]);

    const dlq = await k.collect(topics.dlq, (ms) => ms.length >= attempts.length);
    expect(dlq.map((m) => header(m, 'x-dlq-reason'))).toEqual(attempts.map(() => 'RUN_ID_CONFLICT'));
    expect(dlq.map((m) => header(m, 'x-dlq-org-id'))).toEqual(attempts.map(() => 'org_a'));
    expect(dlq.map((m) => header(m, 'x-dlq-run-id')).sort()).toEqual([...theirs].sort());
    expect(dlq.map((m) => m.value!.toString()).sort()).toEqual([...attempts].sort());
    // Every outcome acknowledged (a status update would have been one): then nothing of org_b's runs moved.
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'the router committed every trigger');
    await eventually(() => store.getRun('r_conflict_mine') !== undefined, 'org_a’s own run');
    const statuses = (await k.collect(topics.status, (ms) => ms.some((m) => m.key?.toString() === 'r_conflict_mine'))).map((m) => json<RunStatusUpdate>(m));
    expect(statuses.filter((u) => u.orgId === 'org_a').map((u) => u.runId)).toEqual(['r_conflict_mine']);
    for (const id of theirs) {
      expect(store.getRun(id)).toEqual(before[id]!.run);
      expect(store.updates(id)).toHaveLength(before[id]!.timeline);
    }
    const orgA = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_a'), (ms) => ms.length >= 1);
    expect(orgA.map((m) => m.key?.toString())).toEqual(['r_conflict_mine']);
  });

  it('dead-letters unknown invocation types, and applies the catalog’s invocationMethod', async () => {
    const dir = tempDir('actions-');
    writeFileSync(join(dir, 'a.json'), JSON.stringify([
      { identifier: 'to_kafka', invocationMethod: { type: 'KAFKA' } },
      { identifier: 'to_slack', invocationMethod: { type: 'SLACK' } },
    ]));
    app = await startApp(testConfig(topics, { ACTIONS_PATH: dir }));
    await k.produce(topics.trigger, [
      // The event claims WEBHOOK; the catalog says KAFKA and wins.
      { value: JSON.stringify(samplePortMessage({ runId: 'r_cat', action: 'to_kafka', orgId: 'org_cat', invocationMethod: { type: 'WEBHOOK', url: 'http://evil.example' } })) },
      { key: 'r_slack', value: JSON.stringify(samplePortMessage({ runId: 'r_slack', action: 'to_slack' })) },
      { key: 'r_slack_secret', value: JSON.stringify(withCensored(samplePortMessage({ runId: 'r_slack_secret', action: 'to_slack' }))) },
    ]);
    const [routed] = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_cat'), (ms) => ms.length >= 1);
    expect(json(routed!)).toMatchObject({ payload: { action: { invocationMethod: { type: 'KAFKA' } } } });
    const dead = await k.collect(topics.dlq, (ms) => ms.length >= 2);
    expect(dead.map((m) => header(m, 'x-dlq-reason'))).toEqual(['UNKNOWN_INVOCATION', 'UNKNOWN_INVOCATION']);
    // The store withholds a copy it could not mask when the router says the decoded event held secrets.
    expect(dead.map((m) => [m.key!.toString(), header(m, 'x-dlq-sensitive')]).sort()).toEqual([['r_slack', undefined], ['r_slack_secret', 'true']]);
  });

  it('never makes a metric label of an invocation type an event made up', async () => {
    app = await startApp(testConfig(topics));
    // A label per string would grow /metrics without bound, and a quote or newline could forge series.
    const madeUp = ['X'.repeat(4_000), 'SLACK"} 1\nfake_metric{a="', 'SQS', '\u2603'];
    await k.produce(topics.trigger, madeUp.map((type, i) => ({ value: JSON.stringify(samplePortMessage({ runId: `r_label_${i}`, invocationMethod: { type } })) })));
    const letters = await k.collect(topics.dlq, (ms) => ms.length >= madeUp.length);
    expect(letters.map((m) => header(m, 'x-dlq-reason'))).toEqual(new Array(madeUp.length).fill('UNKNOWN_INVOCATION'));
    const text = await app.metrics.registry.metrics();
    const labels = new Set([...text.matchAll(/invocation="([^"]*)"/g)].map((m) => m[1]));
    expect(labels).toContain('other');
    for (const label of labels) expect(['KAFKA', 'WEBHOOK', 'GITHUB', 'GITLAB', 'other', 'unknown']).toContain(label);
    expect(text).not.toContain('fake_metric');
  });

  it('names a censored input and its rule in errors, never its value', async () => {
    const dir = tempDir('actions-');
    writeFileSync(join(dir, 'deploy.json'), JSON.stringify({
      identifier: 'deploy_service',
      userInputs: { properties: { region: { type: 'string', enum: ['eu', 'us'] }, keys: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } }, note: { type: 'string', enum: ['x'] } } },
      invocationMethod: { type: 'KAFKA' },
    }));
    const lines: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, done) => void (lines.push(c.toString()), done()) });
    app = new App(testConfig(topics, { ACTIONS_PATH: dir }), createLogger('debug', sink));
    await app.start();
    const message = (runId: string, properties: Record<string, unknown>, censored: string[]) => {
      const m = samplePortMessage({ runId, properties: properties as never }) as { payload: Record<string, unknown> };
      m.payload.censoredProperties = censored;
      return JSON.stringify(m);
    };
    await k.produce(topics.trigger, [
      { key: 'r_cens_1', value: message('r_cens_1', { region: 'SECRET-REGION-1' }, ['region']) },
      { key: 'r_cens_2', value: message('r_cens_2', { keys: ['a', 'SECRET-KEY-2', 'SECRET-KEY-3'] }, ['keys']) },
      // Not censored: the value is shown (cut short).
      { key: 'r_cens_3', value: message('r_cens_3', { note: 'visible-' + 'y'.repeat(500) }, []) },
    ]);
    const dlq = await k.collect(topics.dlq, (ms) => ms.length >= 3);
    const statuses = await k.collect(topics.status, (ms) => ms.filter((m) => json<RunStatusUpdate>(m).status === 'FAILURE').length >= 3);
    await eventually(() => ['r_cens_1', 'r_cens_2', 'r_cens_3'].every((id) => app!.runs!.store.getRun(id)?.status === 'FAILURE'), 'the failures stored');
    const error = (key: string) => header(dlq.find((m) => m.key?.toString() === key)!, 'x-dlq-error')!;
    expect(error('r_cens_1')).toMatch(/region: the \(censored\) value is not one of \["eu","us"\]/);
    expect(error('r_cens_2')).toMatch(/keys: 2 \(censored\) items are not in \["a","b"\]/);
    expect(error('r_cens_3')).toContain('"visible-yyy');
    expect(error('r_cens_3').length).toBeLessThan(400);
    const everywhere = [
      ...dlq.map((m) => JSON.stringify(m.headers ?? {}, (_k, v) => (Buffer.isBuffer(v) ? v.toString() : v))),
      ...statuses.map((m) => m.value!.toString()),
      ...['r_cens_1', 'r_cens_2'].map((id) => JSON.stringify({ run: app!.runs!.store.getRun(id), timeline: app!.runs!.store.updatesAfter(id, 0, 100) })),
      ...lines,
    ].join('\n');
    for (const secret of ['SECRET-REGION-1', 'SECRET-KEY-2', 'SECRET-KEY-3']) {
      // The status topic and the store carry the inputs only masked; the dead-letter topic keeps the original event bytes (the operators' copy).
      expect({ secret, found: everywhere.includes(secret) }).toEqual({ secret, found: false });
    }
  });

  it('loses nothing across a restart in the middle of a stream', async () => {
    const N = 400;
    const ids = Array.from({ length: N }, (_, i) => `r_restart_${i}`);
    await k.createTopic(topics.trigger, 3);
    await k.produce(topics.trigger, ids.map((id) => ({ key: id, value: JSON.stringify(samplePortMessage({ runId: id, orgId: 'org_r' })) })));
    const config = testConfig(topics, { ROUTER_MAX_IN_FLIGHT_PER_PARTITION: '8', ROUTER_MAX_IN_FLIGHT: '16' });
    app = await startApp(config);
    // Stop the first router once part of the stream is through.
    await k.collect(topics.status, (ms) => ms.length >= N / 4, 30_000);
    await app.stop();
    app = await startApp(config);
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_r');
    const routed = await k.collect(orgTopic, (ms) => new Set(ms.map((m) => m.key!.toString())).size >= N, 60_000);
    const seen = new Set(routed.map((m) => m.key!.toString()));
    expect(ids.filter((id) => !seen.has(id))).toEqual([]);
    const statuses = await k.collect(topics.status, (ms) => new Set(ms.map((m) => m.key!.toString())).size >= N, 60_000);
    expect(new Set(statuses.map((m) => m.key!.toString())).size).toBe(N);
    // A graceful stop commits what is done: few or no duplicates.
    expect(routed.length - N).toBeLessThanOrEqual(16);
  });
});

/** A run message with a censored input. */
function withCensored(msg: ReturnType<typeof samplePortMessage>): ReturnType<typeof samplePortMessage> {
  const payload = msg.payload as Record<string, unknown>;
  payload.properties = { ...(payload.properties as object), pw: 's3cret' };
  payload.censoredProperties = ['pw'];
  return msg;
}
