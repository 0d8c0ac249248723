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
      let u: RunStatusUpdate;
      try {
        u = json<RunStatusUpdate>(m);
      } catch {
        return; // a malformed record a test put there: the store skips it, and so does this
      }
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

/**
 * The promise after a kill at `killAt`: every run was called; no run
 * answered more than a second before the kill was called again (at least
 * 90% of the quick ones were); the runs called again are only the slow ones
 * (under way at the kill), each with its first call's Idempotency-Key.
 * The slow ones are answered `holdMs` after their call, the quick ones 5 ms.
 */
export function expectNoRepeat(calls: Map<string, ReceivedCall[]>, run: Pick<HeadOfLine, 'slowIds' | 'quickIds'>, killAt: number, holdMs: number): { answeredEarly: string[]; repeated: string[] } {
  const { slowIds, quickIds } = run;
  const all = [...quickIds, ...slowIds];
  expect(all.filter((id) => !calls.has(id))).toEqual([]);
  const answeredAt = (id: string) => calls.get(id)![0]!.at + (slowIds.includes(id) ? holdMs : 5);
  const answeredEarly = all.filter((id) => answeredAt(id) < killAt - 1_000);
  expect(answeredEarly.length).toBeGreaterThanOrEqual(quickIds.length * 0.9);
  expect(answeredEarly.filter((id) => calls.get(id)!.length > 1)).toEqual([]);
  const repeated = all.filter((id) => calls.get(id)!.length > 1);
  expect(repeated.filter((id) => !slowIds.includes(id))).toEqual([]);
  for (const id of repeated) expect(new Set(calls.get(id)!.map((c) => c.key))).toEqual(new Set([id]));
  return { answeredEarly, repeated };
}
