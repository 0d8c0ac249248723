import { tempDir } from '../helpers/cleanup';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { TestKafka, eventually, testTopics, topicEnv } from '../helpers/kafka';
import { freePort, metricSum, spawnRouter, stopped } from '../helpers/processes';

/** kill -9 of the process applying the status topic loses and duplicates nothing. */
describe('run store under kill -9', () => {
  const k = new TestKafka();
  afterAll(() => k.close());

  test('every update applied exactly once across a crash mid-apply', async () => {
    const topics = testTopics();
    const dir = tempDir('store-crash-');
    const dbPath = join(dir, 'runs.db');
    const env = {
      ...topicEnv(topics),
      TOPICS_PARTITIONS: '3',
      RUNS_DB_PATH: dbPath,
    };
    await k.createTopic(topics.status, 3);
    const RUNS = 2_000;
    const PER_RUN = 15;
    const messages = [];
    for (let i = 0; i < PER_RUN; i++) {
      for (let r = 0; r < RUNS; r++) {
        const runId = `r_crash_${r}`;
        const update = { runId, orgId: 'org_acme', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [], externalRunId: null, log: `line ${i}`, invocationType: 'KAFKA', source: 'BACKEND', attempt: 1, at: Date.now() };
        messages.push({ key: runId, value: JSON.stringify(update) });
      }
    }
    for (let i = 0; i < messages.length; i += 2000) await k.produce(topics.status, messages.slice(i, i + 2000));
    const total = RUNS * PER_RUN;
    const count = (sql: string): number => {
      try {
        const db = new Database(dbPath, { readonly: true, fileMustExist: true });
        try {
          return (db.prepare(sql).get() as { n: number }).n;
        } finally {
          db.close();
        }
      } catch {
        return 0;
      }
    };
    // The first process kills itself inside the transaction that takes the 15,000th update (its rows written, the
    // transaction not committed): the failpoint makes "mid-apply" certain, not a matter of timing.
    const KILL_AT = total / 2;
    const first = spawnRouter({ ...env, ACTION_ROUTER_TEST_KILL_AT_UPDATE: String(KILL_AT) }, 'store-first');
    await stopped(first);
    expect(first.signalCode).toBe('SIGKILL');
    const atCrash = count('SELECT COUNT(*) AS n FROM run_logs');
    // Earlier transactions are kept; the one killed left nothing.
    expect(atCrash).toBeGreaterThan(0);
    expect(atCrash).toBeLessThan(KILL_AT);
    expect(count('SELECT COUNT(*) AS n FROM run_updates')).toBe(atCrash);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const second = spawnRouter({ ...env, HTTP_PORT: String(port) }, 'store-second');
    try {
      await eventually(() => count('SELECT COUNT(*) AS n FROM run_updates') >= total, 'every update applied', 60_000);
      // Read to the end of the topic: nothing more can arrive.
      await eventually(async () => (await metricSum(base, 'action_router_store_lag').catch(() => -1)) === 0, 'the store at the end of the topic', 30_000);
    } finally {
      second.kill('SIGTERM');
      await stopped(second);
    }
    const db = new Database(dbPath, { readonly: true });
    try {
      expect(count('SELECT COUNT(*) AS n FROM run_updates')).toBe(total);
      expect(count('SELECT COUNT(*) AS n FROM run_logs')).toBe(total);
      expect(count('SELECT COUNT(DISTINCT partition || \':\' || offset) AS n FROM run_updates')).toBe(total);
      const perRun = db
        .prepare("SELECT r.id AS run_id, COUNT(*) AS n, GROUP_CONCAT(l.message, '|') AS lines FROM (SELECT * FROM run_logs ORDER BY seq) l JOIN runs r ON r.key = l.run_key GROUP BY l.run_key")
        .all() as { run_id: string; n: number; lines: string }[];
      expect(perRun).toHaveLength(RUNS);
      const expected = Array.from({ length: PER_RUN }, (_, i) => `line ${i}`).join('|');
      expect(perRun.filter((r) => r.n !== PER_RUN || r.lines !== expected)).toEqual([]);
      process.stdout.write(`store crash test: ${atCrash} of ${total} logs applied at the kill\n`);
    } finally {
      db.close();
    }
  }, 120_000);
});
