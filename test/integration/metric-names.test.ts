import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, eventually, testTopics, topicEnv } from '../helpers/kafka';
import { freePort, metricSum, spawnRouter, stopped } from '../helpers/processes';

const ROOT = resolve(__dirname, '..', '..');

/** The metric names the alert rules and the dashboard use (deploy/monitoring/metric-names.mjs, an ES module: run, not imported). */
function namesUsed(): string[] {
  const out = spawnSync(process.execPath, [join(ROOT, 'deploy', 'monitoring', 'metric-names.mjs')], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`metric-names.mjs failed: ${out.stderr}`);
  return out.stdout.split('\n').filter(Boolean);
}

describe('the metrics the alert rules and the dashboard use', () => {
  const k = new TestKafka();
  afterAll(() => k.close());

  it('are all exported by a running router (action-router start) after some traffic', async () => {
    const names = namesUsed();
    // The list is what the rules and the dashboard really name: a broken reader would pass with none.
    expect(names.length).toBeGreaterThan(15);
    expect(names).toEqual(expect.arrayContaining(['action_router_consumer_lag', 'action_router_store_writer_up', 'action_router_ready']));

    const topics = testTopics();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const router = spawnRouter({ ...topicEnv(topics), HTTP_PORT: String(port), TOPICS_PARTITIONS: '2' }, 'metric-names');
    try {
      await eventually(async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok === true, 'the router to be ready', 60_000);
      await k.produce(topics.trigger, [
        { value: JSON.stringify(samplePortMessage({ runId: 'r_names_1', orgId: 'org_names' })) },
        { value: 'not json' },
      ]);
      await eventually(async () => (await metricSum(base, 'action_router_runs_dead_lettered_total')) >= 1 && (await metricSum(base, 'action_router_runs_routed_total')) >= 1, 'traffic counted', 30_000);
      const text = await (await fetch(`${base}/metrics`)).text();
      const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
      const missing = names.filter((n) => !exported.has(n));
      expect(missing).toEqual([]);
      // And the new gauges carry values, not only their type line.
      expect(text).toMatch(/^action_router_ready 1$/m);
      expect(text).toMatch(/^action_router_store_open_runs\{status="IN_PROGRESS"\} \d+$/m);
      expect(text).toMatch(/^action_router_store_oldest_open_run_age_seconds\{status="WAITING_FOR_APPROVAL"\} 0$/m);
    } finally {
      router.kill('SIGTERM');
      await stopped(router);
    }
  });
});
