import { ErrorCodes } from '../../src/errors';
import { tempDir } from '../helpers/cleanup';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kafka, logLevel } from 'kafkajs';
import type { App } from '../../src/app';
import { samplePortMessage } from '../../src/sample';
import { ApiClient, apiEnv } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/** The run store's writer thread on the real broker: what it skips, what it survives, what it says. */

const update = (runId: string, over: Record<string, unknown> = {}) => ({
  runId, orgId: 'org_acme', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [], externalRunId: null,
  log: null, invocationType: 'KAFKA', source: 'ROUTER', attempt: 1, at: Date.now(), ...over,
});

async function counter(app: App, name: string): Promise<Record<string, number>> {
  const metric = app.metrics.registry.getSingleMetric(name);
  if (!metric) return {};
  const { values } = await metric.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.result ?? ''), v.value]));
}

async function readyz(api: ApiClient): Promise<{ status: number; text: string }> {
  const res = await fetch(`${api.base}/readyz`);
  return { status: res.status, text: await res.text() };
}

describe('run store writer', () => {
  const kafka = new TestKafka();
  const cleanup: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
    await kafka.close();
  });

  async function startWith(topics: TestTopics, env: Record<string, string> = {}, statusPartitions = 1): Promise<{ app: App; api: ApiClient }> {
    await kafka.createTopic(topics.status, statusPartitions);
    const app = await startApp(testConfig(topics, apiEnv(env)), { routing: false });
    const api = await ApiClient.start(app);
    cleanup.push(async () => {
      await api.close();
      await app.stop();
    });
    return { app, api };
  }

  test('every class of malformed update is skipped among valid ones; the valid apply once and writes after them answer', async () => {
    const topics = testTopics();
    const { app, api } = await startWith(topics);
    const id = 'r_malformed_1';
    const bad: (string | Buffer)[] = [
      Buffer.from([0xff, 0xfe, 0x00, 0x01]),
      '{"runId": "r_malformed_1", "status":',
      JSON.stringify([1, 2, 3]),
      JSON.stringify({ ...update(id), source: undefined }),
      JSON.stringify({ ...update(id), runId: undefined }),
      JSON.stringify({ ...update(id), summary: true }),
      JSON.stringify({ ...update(id), at: 'yesterday' }),
      JSON.stringify({ ...update(id), status: 'DONE' }),
      JSON.stringify({ ...update(id), statusDetail: 'PAUSED' }),
      JSON.stringify({ ...update(id), links: 'https://x' }),
      JSON.stringify({ ...update(id), statusLabel: 'x'.repeat(5_000) }),
      JSON.stringify({ ...update(id), run: { triggerPartition: 'zero' } }),
      JSON.stringify({ ...update(id), orgId: 'org_globex', statusLabel: 'hijacked' }),
      // JSON text fields nested past the depth limit (the API and the console would walk them).
      JSON.stringify({ ...update(id), response: `${'['.repeat(5_000)}${']'.repeat(5_000)}` }),
      JSON.stringify({ ...update(id), run: { entity: `${'{"a":'.repeat(65)}1${'}'.repeat(65)}` } }),
    ];
    const messages = [
      { key: id, value: JSON.stringify(update(id, { log: 'first', statusLabel: 'one' })) },
      ...bad.map((value) => ({ key: id, value })),
      { key: id, value: JSON.stringify(update(id, { source: 'BACKEND', statusLabel: 'two', log: 'second' })) },
    ];
    await kafka.produce(topics.status, messages);
    await eventually(() => app.runs!.store.getRun(id)?.statusLabel === 'two', 'the valid update after the malformed ones');
    const counts = await counter(app, 'action_router_store_updates_total');
    expect(counts).toMatchObject({ applied: 2, undecodable: 2, invalid: bad.length - 2 });
    const run = app.runs!.store.getRun(id)!;
    expect(run.orgId).toBe('org_acme');
    expect(app.runs!.store.logs(id, 50, 0).map((l) => l.message)).toEqual(['first', 'second']);
    // The partition moved on: an API write after them is applied and answered with it.
    const patch = await api.as('acme-ci', 'PATCH', `/v1/actions/runs/${id}`, { statusLabel: 'three' });
    expect(patch.status).toBe(200);
    expect(patch.body.run).toMatchObject({ statusLabel: 'three' });
    const log = await api.as('acme-ci', 'POST', `/v1/actions/runs/${id}/logs`, { message: 'third' });
    expect(log.status).toBe(201);
    expect((log.body.runLog as { id: string }).id).toMatch(/^log_[0-9a-z]+$/);
    expect((await readyz(api)).status).toBe(200);
    // Nothing is re-read or retried: the counts stay as they were.
    await eventually(async () => (await counter(app, 'action_router_store_updates_total')).applied === 4, 'the two API writes applied');
    expect(await counter(app, 'action_router_store_updates_total')).toMatchObject({ undecodable: 2, invalid: bad.length - 2 });
  });

  test('hostile page requests are bounded: deep offsets refused, cursors page on, wildcards are text, totals capped', async () => {
    const topics = testTopics();
    const { app, api } = await startWith(topics);
    const N = 120;
    await kafka.produce(topics.status, Array.from({ length: N }, (_, i) => ({ key: `r_page_${i}`, value: JSON.stringify(update(`r_page_${i}`, { at: 1_000_000 + i, run: null, externalRunId: i % 10 === 0 ? `ext-%_${i}` : null })) })));
    await eventually(() => app.runs!.store.getRun(`r_page_${N - 1}`) !== undefined, 'the runs stored');
    const deep = await api.as('acme-ci', 'GET', '/v1/actions/runs?offset=1000000');
    expect(deep.status).toBe(422);
    expect(deep.body).toMatchObject({ ok: false, error: 'invalid_request' });
    expect((await api.as('acme-ci', 'GET', '/v1/actions/runs?limit=100000')).status).toBe(422);
    expect((await api.as('acme-ci', 'GET', '/v1/actions/runs?cursor=bm90LWEtY3Vyc29y')).status).toBe(422);
    // Keyset pages: every run once, newest first.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await api.as('acme-ci', 'GET', `/v1/actions/runs?limit=50${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...(res.body.runs as { id: string }[]).map((r) => r.id));
      cursor = res.body.next as string | null;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => `r_page_${N - 1 - i}`));
    // SQL wildcards are text; the trigram index finds a part of a word.
    const like = await api.as('acme-ci', 'GET', `/v1/actions/runs?q=${encodeURIComponent('-%_')}&limit=1000`);
    expect((like.body.runs as { id: string }[]).length).toBe(12);
    const part = await api.as('acme-ci', 'GET', '/v1/actions/runs?q=age_11&limit=1000');
    expect((part.body.runs as { id: string }[]).map((r) => r.id).sort()).toEqual(['r_page_11', 'r_page_110', 'r_page_111', 'r_page_112', 'r_page_113', 'r_page_114', 'r_page_115', 'r_page_116', 'r_page_117', 'r_page_118', 'r_page_119']);
    const exact = await api.as('acme-ci', 'GET', '/v1/actions/runs?q=zz&limit=1000');
    expect(exact.body.runs).toEqual([]);
    const list = await api.as('operator', 'GET', '/console/api/runs?limit=10');
    expect(list.body).toMatchObject({ total: N, totalCapped: false });
  });

  test('a corrupt or foreign file is moved aside and the store rebuilt from the topic', async () => {
    const topics = testTopics();
    await kafka.createTopic(topics.status, 1);
    await kafka.produce(topics.status, [{ key: 'r_rebuild_1', value: JSON.stringify(update('r_rebuild_1', { statusLabel: 'kept on the topic' })) }]);
    const dir = tempDir('store-corrupt-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const cases: [string, (path: string) => void][] = [
      ['garbage', (path) => writeFileSync(path, Buffer.alloc(8192, 0x5a))],
      ['foreign', (path) => {
        const db = new Database(path);
        db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (9.5)');
        db.close();
      }],
      ['truncated', (path) => {
        const db = new Database(path);
        db.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema_version', '4'); CREATE TABLE pad (x BLOB);`);
        const insert = db.prepare('INSERT INTO pad VALUES (randomblob(4000))');
        for (let i = 0; i < 200; i++) insert.run();
        db.close();
        truncateSync(path, 100_000);
      }],
    ];
    for (const [name, damage] of cases) {
      const path = join(dir, `${name}.db`);
      damage(path);
      const app = await startApp(testConfig({ ...topics, group: `${topics.group}-${name}` }, { RUNS_DB_PATH: path }), { routing: false });
      try {
        await eventually(() => app.runs!.store.getRun('r_rebuild_1')?.statusLabel === 'kept on the topic', `${name}: rebuilt from the topic`);
        const aside = readdirSync(dir).filter((f) => f.startsWith(`${name}.db.unreadable-`) && !f.endsWith('-wal') && !f.endsWith('-shm'));
        expect(aside).toHaveLength(1);
        expect(app.ready).toBe(true);
      } finally {
        await app.stop();
      }
    }
  });

  test('the mirror keeps its position across a group rejoin: nothing applied is fetched again', async () => {
    const topics = testTopics();
    const { app } = await startWith(topics, {}, 3);
    const N = 3_000;
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ key: `r_rejoin_${from + i}`, value: JSON.stringify(update(`r_rejoin_${from + i}`)) }));
    await kafka.produce(topics.status, batch(0, N));
    const applied = async () => (await counter(app, 'action_router_store_updates_total')).applied ?? 0;
    const fetched = async () => Object.values(await counter(app, 'action_router_store_records_fetched_total'))[0] ?? 0;
    await eventually(async () => (await applied()) === N, 'the first updates applied');
    // The store's own group commits what it applied.
    const admin = kafka.kafka.admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    const ours = await (async () => {
      for (const g of (await admin.listGroups()).groups.map((x) => x.groupId).filter((x) => x.startsWith('action-router-store-'))) {
        const offsets = await admin.fetchOffsets({ groupId: g, topics: [topics.status] });
        if (offsets[0]!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0) === N) return g;
      }
      return '';
    })();
    expect(ours).not.toBe('');
    await eventually(async () => (await fetched()) >= N, 'the fetched count reported');
    const before = await fetched();
    // Another member joins the store's group, takes partitions, and leaves: two rebalances.
    const intruder = new Kafka({ brokers: [process.env.KAFKA_BROKERS!], logLevel: logLevel.NOTHING }).consumer({ groupId: ours, sessionTimeout: 10_000, heartbeatInterval: 500 });
    let joined = false;
    intruder.on(intruder.events.GROUP_JOIN, () => (joined = true));
    await intruder.connect();
    await intruder.subscribe({ topic: topics.status, fromBeginning: false });
    await intruder.run({ autoCommit: false, eachBatch: async () => undefined });
    await eventually(() => joined, 'the second member in the group');
    await intruder.disconnect();
    await kafka.produce(topics.status, batch(N, 300));
    await eventually(async () => (await applied()) === N + 300, 'updates after the rejoins applied');
    await eventually(async () => (await fetched()) >= before + 300, 'their fetch reported');
    // Only the new records were fetched: nothing before the rejoins was read again.
    expect((await fetched()) - before).toBe(300);
    expect(await applied()).toBe(N + 300);
  });

  test('a writer thread that dies is started again while the API and routing go on, and misses nothing', async () => {
    const topics = testTopics();
    await kafka.createTopic(topics.status, 2);
    const app = await startApp(testConfig(topics, apiEnv()));
    const api = await ApiClient.start(app);
    cleanup.push(async () => {
      await api.close();
      await app.stop();
    });
    const trigger = (runId: string) => kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_acme', invocationMethod: { type: 'KAFKA' } })) }]);
    await trigger('r_crash_before');
    await eventually(() => app.runs!.store.getRun('r_crash_before') !== undefined, 'a run before the crash');
    await app.runs!.writer.crashForTest();
    // While the writer is away, routing goes on and the store says it cannot apply.
    const during = Array.from({ length: 20 }, (_, i) => `r_crash_during_${i}`);
    for (const id of during) await trigger(id);
    const orgTopic = topics.orgTemplate.replace('{orgId}', 'org_acme');
    await kafka.collect(orgTopic, (ms) => ms.length >= 21);
    await eventually(() => during.every((id) => app.runs!.store.getRun(id) !== undefined), 'the restarted writer applied them');
    expect(Object.values(await counter(app, 'action_router_store_writer_restarts_total'))[0]).toBe(1);
    await eventually(() => app.ready, 'ready again');
    const patch = await api.as('acme-ci', 'PATCH', `/v1/actions/runs/${during[0]}`, { status: 'SUCCESS' });
    expect(patch.status).toBe(200);
  });

  // Issue 18, defect 9: a write whose status update the broker refuses must not leave its wait for the store behind.
  test('a write the broker refuses leaves no waiter behind, and the next write applies', async () => {
    const topics = testTopics();
    await kafka.createTopic(topics.status, 1, { 'max.message.bytes': '4096' });
    const { app } = await startWith(topics);
    const run = { id: 'r_refused_write', orgId: 'org_acme', action: 'deploy', invocationType: 'KAFKA' };
    const refused = app.runs!.write(run, 'tester', { status: 'IN_PROGRESS', log: 'x'.repeat(10_000) });
    await expect(refused).rejects.toMatchObject({ code: ErrorCodes.OUTPUT_TOO_LARGE });
    expect(app.runs!.writer.markWaitCount).toBe(0);
    const written = await app.runs!.write(run, 'tester', { status: 'IN_PROGRESS', log: 'small' });
    expect(written.applied).toMatchObject({ result: 'applied' });
    expect(app.runs!.writer.markWaitCount).toBe(0);
  });

  test('a stopped instance leaves none of its own consumer groups (store, dead-letter view, sign-outs) on the cluster', async () => {
    const topics = testTopics();
    const admin = kafka.kafka.admin();
    await admin.connect();
    const instanceGroups = async () => (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => /^action-router-(store|dlq-view|sign-outs)-/.test(g));
    try {
      const before = new Set(await instanceGroups());
      await kafka.createTopic(topics.status, 1);
      const app = await startApp(testConfig(topics, apiEnv({ CONSOLE: 'true', API_TOKEN_SECRET: 'groups-test-token-secret-0123456789' })), { routing: false });
      let mine: string[] = [];
      try {
        await eventually(async () => (mine = (await instanceGroups()).filter((g) => !before.has(g))).length === 3, 'the instance’s three groups');
      } finally {
        await app.stop();
      }
      const after = new Set(await instanceGroups());
      expect(mine.filter((g) => after.has(g))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  test('the writer thread runs at RUNS_WRITER_NICE and the routing thread keeps its priority', async () => {
    const before = getPriority(0);
    const { app } = await startWith(testTopics(), { RUNS_WRITER_NICE: '7' });
    const thread = app.runs!.writer.thread!;
    expect(thread.tid).not.toBeNull();
    expect(thread.tid).not.toBe(process.pid);
    // Asked of the kernel here, not taken from the thread's word.
    expect(getPriority(thread.tid!)).toBe(Math.max(before, 7));
    expect(getPriority(0)).toBe(before);
  });

  test('a full disk: readiness false with the reason, writes 503 in the envelope, everything applied once when space returns', async () => {
    const mount = tempDir('store-full-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount], { stdio: 'ignore' });
    } catch {
      process.stdout.write('SKIP full-disk test: cannot mount a tmpfs here (needs root); CI runs it as root\n');
      rmSync(mount, { recursive: true, force: true });
      return;
    }
    cleanup.push(() => {
      execFileSync('umount', [mount], { stdio: 'ignore' });
      rmSync(mount, { recursive: true, force: true });
    });
    const topics = testTopics();
    const { app, api } = await startWith(topics, { RUNS_DB_PATH: join(mount, 'runs.db') });
    await kafka.produce(topics.status, [{ key: 'r_full_0', value: JSON.stringify(update('r_full_0')) }]);
    await eventually(() => app.runs!.store.getRun('r_full_0') !== undefined, 'the first run');
    // Fill the disk, leaving less than the next updates need.
    const filler = join(mount, 'filler');
    mkdirSync(filler);
    for (let i = 0; ; i++) {
      try {
        writeFileSync(join(filler, String(i)), Buffer.alloc(256 * 1024));
      } catch {
        break;
      }
    }
    // 1.6 MB of logs: more than the filler leaves, well under what the tmpfs holds once it is gone.
    const N = 100;
    const big = 'L'.repeat(16 * 1024);
    for (let i = 0; i < N; i += 20) {
      await kafka.produce(topics.status, Array.from({ length: 20 }, (_, j) => ({ key: `r_full_${i + j + 1}`, value: JSON.stringify(update(`r_full_${i + j + 1}`, { log: big })) })));
    }
    await eventually(async () => (await readyz(api)).status === 503, 'readiness false');
    expect((await readyz(api)).text).toMatch(/run store cannot apply: .*(full|disk)/i);
    const refused = await api.as('acme-ci', 'PATCH', '/v1/actions/runs/r_full_0', { statusLabel: 'while full' });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ ok: false, error: 'store_unavailable' });
    expect(app.runs!.store.getRun('r_full_0')!.statusLabel).toBeNull();
    const lag = app.metrics.registry.getSingleMetric('action_router_store_lag')!;
    await eventually(async () => (await lag.get()).values.reduce((s, v) => s + v.value, 0) > 0, 'the lag counts what is not applied');
    // Space returns.
    rmSync(filler, { recursive: true, force: true });
    await eventually(async () => (await readyz(api)).status === 200, 'ready again', 30_000);
    await eventually(() => app.runs!.store.getRun(`r_full_${N}`) !== undefined, 'every update applied');
    const db = new Database(join(mount, 'runs.db'), { readonly: true });
    try {
      expect((db.prepare('SELECT COUNT(*) AS n FROM run_logs').get() as { n: number }).n).toBe(N);
      expect((db.prepare('SELECT COUNT(*) AS n FROM run_updates').get() as { n: number }).n).toBe(N + 1);
    } finally {
      db.close();
    }
    expect((await api.as('acme-ci', 'PATCH', '/v1/actions/runs/r_full_0', { statusLabel: 'after' })).status).toBe(200);
    expect(existsSync(join(mount, 'runs.db'))).toBe(true);
  });
});
