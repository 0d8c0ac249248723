import { tempDir } from '../helpers/cleanup';
import { join } from 'node:path';
import { FakeGithub } from '../../src/dev/fake-github';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, eventually, json, testTopics, topicEnv } from '../helpers/kafka';
import { spawnRouter, stopped } from '../helpers/processes';

/**
 * A router killed with -9 while it follows a GitHub workflow run: the
 * restarted router finds the run unfinished in its store and follows it
 * to its end.
 */
describe('followed runs survive a restart', () => {
  const k = new TestKafka();
  const github = new FakeGithub({ token: 'gh', runDetails: true, stepMs: 4_000 });
  beforeAll(() => github.start());
  afterAll(async () => {
    await github.close();
    await k.close();
  });

  test('kill -9 while a workflow runs, then a restart: the run still reaches SUCCESS, once', async () => {
    const topics = testTopics();
    const dir = tempDir('follow-restart-');
    const env = {
      ...topicEnv(topics),
      TOPICS_PARTITIONS: '2',
      GITHUB_API_URL: github.url,
      GITHUB_TOKEN: 'gh',
      GITHUB_POLL_INTERVAL_MS: '100',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      RUNS_DB_PATH: join(dir, 'runs.db'),
      ROUTER_SESSION_TIMEOUT_MS: '6000',
    };
    const updates: RunStatusUpdate[] = [];
    const first = spawnRouter(env, 'follow-first');
    const runId = 'r_follow_restart';
    await k.produce(topics.trigger, [
      { key: runId, value: JSON.stringify(samplePortMessage({ runId, invocationMethod: { type: 'GITHUB', org: 'acme', repo: 'api', workflow: 'deploy.yml' } })) },
    ]);
    await k.follow(topics.status, (m) => updates.push(json<RunStatusUpdate>(m)));
    await eventually(() => updates.some((u) => u.runId === runId && u.externalRunId), 'the workflow run found', 30_000);
    // The trigger's offset committed, so the restart does not dispatch it again (at-least-once would allow that).
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'the trigger committed', 30_000);
    expect(github.runs[0]!.status).not.toBe('completed');
    first.kill('SIGKILL');
    await stopped(first);
    const before = updates.length;
    const second = spawnRouter(env, 'follow-second');
    try {
      await eventually(() => updates.some((u) => u.runId === runId && u.status === 'SUCCESS'), 'SUCCESS after the restart', 40_000);
    } finally {
      // A graceful stop ends the follow and flushes every update it made: what the topic has next is all there is.
      second.kill('SIGTERM');
      await stopped(second);
    }
    const written = await k.messageCount(topics.status);
    await eventually(() => updates.length === written, 'every status update read', 10_000);
    // Followed by the restarted router, not re-dispatched.
    expect(github.runs).toHaveLength(1);
    const terminal = updates.filter((u) => u.runId === runId && u.status !== 'IN_PROGRESS');
    expect(terminal).toHaveLength(1);
    expect(terminal[0]).toMatchObject({ externalRunId: String(github.runs[0]!.id), source: 'ROUTER' });
    expect(updates.length).toBeGreaterThan(before);
  }, 120_000);
});
