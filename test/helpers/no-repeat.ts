import type { ChildProcess } from 'node:child_process';
import type { WebhookReceiver } from '../../src/dev/webhook-receiver';
import type { JsonObject } from '../../src/model/json';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, eventually, json } from './kafka';
import { stopped } from './processes';

/*
 * The "no run invoked twice" scenario, shared by the router's test
 * (no-repeat.test.ts) and the agent's (agent-no-repeat.test.ts): one slow
 * run at the head of each partition holds back that partition's commit
 * while many behind it finish; the process is killed (SIGKILL) while the
 * slow ones are held, then started again.
 */

export interface HeadOfLine {
  messages: { key: string; value: string; partition: number }[];
  slowIds: string[];
  quickIds: string[];
}

/** Trigger messages: the slow run first on each partition, then `n` quick ones spread over the partitions. */
export function headOfLine(
  on: { partitions: number; orgId: string },
  slow: (p: number) => [string, JsonObject],
  quick: (i: number) => [string, JsonObject],
  n: number,
): HeadOfLine {
  const messages: HeadOfLine['messages'] = [];
  const slowIds: string[] = [];
  const quickIds: string[] = [];
  const message = (runId: string, method: JsonObject) => JSON.stringify(samplePortMessage({ runId, orgId: on.orgId, invocationMethod: method }));
  for (let p = 0; p < on.partitions; p++) {
    const [runId, method] = slow(p);
    slowIds.push(runId);
    messages.push({ key: runId, partition: p, value: message(runId, method) });
  }
  for (let i = 0; i < n; i++) {
    const [runId, method] = quick(i);
    quickIds.push(runId);
    messages.push({ key: runId, partition: i % on.partitions, value: message(runId, method) });
  }
  return { messages, slowIds, quickIds };
}

/**
 * A process from `spawn` until `ready`, `settleMs` more, then kill -9
 * (resolving the time of the kill); a second one until `done`. `after`
 * runs before the second one stops.
 */
export async function crashAndRestart(
  spawn: (name: string) => ChildProcess,
  name: string,
  ready: () => boolean,
  settleMs: number,
  done: () => boolean,
  after?: () => Promise<void>,
): Promise<number> {
  const first = spawn(`${name}-1`);
  await eventually(ready, `${name}: the state to kill in`, 60_000);
  await new Promise((r) => setTimeout(r, settleMs));
  const killAt = Date.now();
  first.kill('SIGKILL');
  await stopped(first);
  const second = spawn(`${name}-2`);
  try {
    await eventually(done, `${name}: every run done after the restart`, 90_000);
    await after?.();
  } finally {
    second.kill('SIGTERM');
    await stopped(second);
  }
  return killAt;
}

/** Every status update of each run, as the status topic has them. */
export class RunStatuses {
  private readonly byRun = new Map<string, RunStatusUpdate[]>();

  /** Follows `topic` from its beginning. */
  static async follow(k: TestKafka, topic: string): Promise<RunStatuses> {
    const statuses = new RunStatuses();
    await k.follow(topic, (m) => {
      const u = json<RunStatusUpdate>(m);
      statuses.byRun.set(u.runId, [...(statuses.byRun.get(u.runId) ?? []), u]);
    });
    return statuses;
  }

  get(runId: string): RunStatusUpdate[] | undefined {
    return this.byRun.get(runId);
  }

  terminal(runId: string): RunStatusUpdate[] {
    return (this.byRun.get(runId) ?? []).filter((u) => u.status !== 'IN_PROGRESS');
  }

  ended(ids: string[]): boolean {
    return ids.every((id) => this.terminal(id).length > 0);
  }

  /** Each run's call has its outcome recorded on the topic (`call: ENDED`, a router's). */
  delivered(ids: string[]): boolean {
    return ids.every((id) => (this.byRun.get(id) ?? []).some((u) => u.call === 'ENDED'));
  }

  /** No run has two terminal updates on the status topic. */
  expectOneEnd(ids: string[]): void {
    const twice = ids.filter((id) => this.terminal(id).length > 1);
    expect(twice).toEqual([]);
  }
}

/** A call the webhook receiver got: when, and its Idempotency-Key. */
export interface ReceivedCall {
  at: number;
  key: string;
}

/** The calls `receiver` gets on `path`, per run id, from now on. */
export function recordCalls(receiver: WebhookReceiver, path: string): Map<string, ReceivedCall[]> {
  const calls = new Map<string, ReceivedCall[]>();
  receiver.onRun = (r) => {
    if (r.request.path !== path || !r.runId) return;
    calls.set(r.runId, [...(calls.get(r.runId) ?? []), { at: r.request.at, key: String(r.request.headers['idempotency-key']) }]);
  };
  return calls;
}
