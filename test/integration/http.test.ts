import { get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHttpServer } from '../../src/http/server';
import { silentLogger } from '../../src/log';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/** GET without keep-alive, so no socket outlives the test. */
function fetchText(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    }).on('error', reject);
  });
}

describe('health, readiness and metrics endpoints', () => {
  const k = new TestKafka();
  afterAll(() => k.close());

  it('reports liveness, readiness and Prometheus metrics of a running router', async () => {
    const topics = testTopics();
    const app = await startApp(testConfig(topics));
    const server = await startHttpServer(0, app, silentLogger());
    const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    try {
      expect((await fetchText(`${base}/healthz`)).status).toBe(200);
      expect((await fetchText(`${base}/readyz`)).status).toBe(200);
      expect((await fetchText(`${base}/nope`)).status).toBe(404);
      await k.produce(topics.trigger, [
        { value: JSON.stringify(samplePortMessage({ runId: 'r_m1', orgId: 'org_m' })) },
        { value: JSON.stringify(samplePortMessage({ runId: 'r_m2', orgId: 'org_m' })) },
        { value: 'not json' },
      ]);
      let text = '';
      await eventually(async () => {
        text = (await fetchText(`${base}/metrics`)).text;
        return /action_router_runs_dead_lettered_total\{[^}]*reason="DECODE_FAILED"[^}]*\} 1/.test(text) && /outcome="delivered"\} 2/.test(text);
      }, 'metrics to count the runs', 15_000);
      expect(text).toMatch(/action_router_runs_received_total 3/);
      expect(text).toMatch(/action_router_invocation_outcomes_total\{invocation="KAFKA",outcome="delivered"\} 2/);
      expect(text).toMatch(/action_router_invocation_duration_seconds_bucket/);
      expect(text).toMatch(/action_router_in_flight\{topic="[^"]+",partition="\d"\}/);
      expect(text).toMatch(/action_router_consumer_lag\{/);
      await eventually(async () => /action_router_committed_offset\{/.test((await fetchText(`${base}/metrics`)).text), 'a commit', 10_000);
    } finally {
      await app.stop();
    }
    expect((await fetchText(`${base}/readyz`)).status).toBe(503);
    await server.close();
  });
});
