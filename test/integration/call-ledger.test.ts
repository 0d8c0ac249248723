import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { StoreCallLedger } from '../../src/call-ledger';
import { createLogger } from '../../src/log';
import { tempDir } from '../helpers/cleanup';
import { TestKafka, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * The run store as the router's memory (stage "once"), on the real broker:
 * the ledger opens only once the store holds what the status topic held at
 * the assignment, and shuts again while a store begun anew catches up.
 */
describe('StoreCallLedger', () => {
  const k = new TestKafka();
  afterAll(() => k.close());

  const ended = (runId: string) => ({
    runId, orgId: 'org_ledger', action: 'deploy', status: 'SUCCESS', statusLabel: null, summary: null, links: [], externalRunId: null,
    log: null, invocationType: 'WEBHOOK', source: 'ROUTER', attempt: 1, at: Date.now(), call: 'ENDED',
  });

  it('a store rebuilt after the gate opened shuts it again until the rebuilt store holds the topic', async () => {
    const topics = testTopics();
    await k.createTopic(topics.status, 2);
    const RUNS = 3_000;
    const ids = Array.from({ length: RUNS }, (_, i) => `r_ledger_${i}`);
    for (let i = 0; i < RUNS; i += 1_000) await k.produce(topics.status, ids.slice(i, i + 1_000).map((id) => ({ key: id, value: JSON.stringify(ended(id)) })));
    const dbPath = join(tempDir('ledger-'), 'runs.db');
    const app = await startApp(testConfig(topics, { RUNS_DB_PATH: dbPath }), { routing: false });
    const admin = k.kafka.admin();
    await admin.connect();
    const ledger = new StoreCallLedger({ admin, statusTopic: topics.status, runs: app.runs!, metrics: app.metrics, logger: createLogger('silent'), doubtMs: 1_000 });
    const signal = new AbortController().signal;
    try {
      ledger.assigned();
      await ledger.current(signal);
      // Open: every outcome on the topic at the assignment is readable.
      expect(ids.filter((id) => ledger.record(id)?.callEndedAt == null)).toEqual([]);
      const events: string[] = [];
      app.runs!.writer.on('rebuilding', () => events.push('rebuilding'));
      app.runs!.writer.on('opened', (m: { rebuilt: boolean }) => events.push(m.rebuilt ? 'opened anew' : 'opened'));
      // The file deleted under the store: the writer notices, and begins a new one from the start of the topic.
      rmSync(dbPath);
      await eventually(() => events.includes('rebuilding'), 'the writer begins anew', 30_000);
      await ledger.current(signal);
      events.push('open');
      // The gate opened again only after the new file was opened, and then it held every run again.
      expect(events).toContain('opened anew');
      expect(events.indexOf('open')).toBeGreaterThan(events.indexOf('opened anew'));
      expect(ids.filter((id) => ledger.record(id)?.callEndedAt == null)).toEqual([]);
      expect(ledger.problem()).toBeNull();
    } finally {
      await admin.disconnect();
      await app.stop();
    }
  }, 90_000);
});
