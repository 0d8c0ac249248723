import type { KafkaMessage } from 'kafkajs';
import { silentLogger } from '../../src/log';
import { RouterMetrics } from '../../src/metrics/metrics';
import type { FrozenRun } from '../../src/model/run';
import { CallLedger, CallRecord, OnceStage } from '../../src/router/stages/once';
import type { MessageContext } from '../../src/router/stages/context';

const run = { runId: 'r_1', orgId: 'org_a', invocationMethod: { type: 'WEBHOOK' } } as unknown as FrozenRun;

function ctx(signal = new AbortController().signal): MessageContext {
  return { received: {} as KafkaMessage, source: { topic: 't', partition: 0 }, signal, log: silentLogger() };
}

/** A ledger over records that a test changes as the store would. */
function ledger(records: Map<string, CallRecord>, over: Partial<CallLedger> = {}): CallLedger & { reads: number } {
  const l = {
    reads: 0,
    doubtMs: 300,
    current: async () => undefined,
    record(id: string) {
      l.reads++;
      return records.get(id);
    },
    awaitRun: (_id: string, ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 20))),
    ...over,
  };
  return l;
}

const record = (over: Partial<CallRecord>): CallRecord => ({ orgId: 'org_a', endedAt: null, approvalState: null, callStartedAt: null, callEndedAt: null, ...over });

async function skippedBy(metrics: RouterMetrics, reason: string): Promise<number> {
  const m = (await metrics.skipped.get()).values.find((v) => v.labels.reason === reason);
  return m?.value ?? 0;
}

describe('stage "once": a run is not called twice', () => {
  test('a run the store does not know, or knows without a call, is called', async () => {
    const records = new Map<string, CallRecord>();
    const stage = new OnceStage(ledger(records), new RouterMetrics());
    expect(await stage.apply(ctx(), run, false)).toEqual({ inDoubt: false });
    records.set('r_1', record({}));
    expect(await stage.apply(ctx(), run, false)).toEqual({ inDoubt: false });
  });

  test.each([
    ['already_ended', record({ endedAt: 5 })],
    ['already_invoked', record({ callStartedAt: 4, callEndedAt: 5 })],
    ['already_invoked', record({ callEndedAt: 5 })],
    ['approval', record({ approvalState: 'WAITING' })],
    ['approval', record({ approvalState: 'RELEASED' })],
  ])('skips (%s) a run whose record says so, and counts it', async (reason, rec) => {
    const metrics = new RouterMetrics();
    const stage = new OnceStage(ledger(new Map([['r_1', rec]])), metrics);
    expect(await stage.apply(ctx(), run, false)).toBeNull();
    expect(await skippedBy(metrics, reason)).toBe(1);
  });

  test('a released run (its approval decided) is called, unless its call is recorded', async () => {
    const stage = new OnceStage(ledger(new Map([['r_1', record({ approvalState: 'RELEASED' })]])), new RouterMetrics());
    expect(await stage.apply(ctx(), run, true)).toEqual({ inDoubt: false });
    const done = new OnceStage(ledger(new Map([['r_1', record({ approvalState: 'RELEASED', callEndedAt: 9 })]])), new RouterMetrics());
    expect(await done.apply(ctx(), run, true)).toBeNull();
  });

  test('a call STARTED with no outcome is waited for while its caller may finish it; an outcome arriving skips the run', async () => {
    const records = new Map([['r_1', record({ callStartedAt: Date.now() })]]);
    const metrics = new RouterMetrics();
    const stage = new OnceStage(ledger(records), metrics);
    setTimeout(() => records.set('r_1', record({ callStartedAt: 1, callEndedAt: 2 })), 60);
    expect(await stage.apply(ctx(), run, false)).toBeNull();
    expect(await skippedBy(metrics, 'already_invoked')).toBe(1);
  });

  test('a call STARTED with no outcome past the wait is in doubt: called again, told so', async () => {
    const metrics = new RouterMetrics();
    const started = Date.now();
    const stage = new OnceStage(ledger(new Map([['r_1', record({ callStartedAt: started })]])), metrics);
    expect(await stage.apply(ctx(), run, false)).toEqual({ inDoubt: true, startedAt: started });
    // It waited out the previous caller's grace (doubtMs) from the call's start, not more.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect((await metrics.inDoubt.get()).values[0]).toMatchObject({ labels: { invocation: 'WEBHOOK' }, value: 1 });
    // A call started long ago is not waited for.
    const old = new OnceStage(ledger(new Map([['r_1', record({ callStartedAt: started - 60_000 })]])), new RouterMetrics());
    const t0 = Date.now();
    expect(await old.apply(ctx(), run, false)).toEqual({ inDoubt: true, startedAt: started - 60_000 });
    expect(Date.now() - t0).toBeLessThan(100);
  });

  test('nothing is read before the store is current, and a store that cannot be read is waited for', async () => {
    let current!: () => void;
    const gate = new Promise<void>((r) => (current = r));
    let failures = 2;
    const l = ledger(new Map(), {
      current: () => gate,
    });
    const read = l.record.bind(l);
    l.record = (id: string) => {
      if (failures-- > 0) throw new Error('the run store is not open yet');
      return read(id);
    };
    const stage = new OnceStage(l, new RouterMetrics());
    const verdict = stage.apply(ctx(), run, false);
    await new Promise((r) => setTimeout(r, 50));
    expect(l.reads).toBe(0);
    current();
    expect(await verdict).toEqual({ inDoubt: false });
    expect(failures).toBeLessThan(0);
  });

  test('without a ledger (RUNS_STORE=false) every run is called: at least once', async () => {
    expect(await new OnceStage(undefined, new RouterMetrics()).apply(ctx(), run, false)).toEqual({ inDoubt: false });
  });
});
