import type { KafkaMessage } from 'kafkajs';
import type { InvocationOutcome, Invoker } from '../../src/invokers/invoker';
import { silentLogger } from '../../src/log';
import { RouterMetrics } from '../../src/metrics/metrics';
import type { FrozenRun } from '../../src/model/run';
import { AbortedError } from '../../src/net/retry';
import { Followers } from '../../src/router/followers';
import type { MessageContext } from '../../src/router/stages/context';
import { InvokeStage } from '../../src/router/stages/invoke';
import type { CallLedger } from '../../src/router/stages/once';
import type { StatusReporter } from '../../src/router/stages/report';
import type { StatusFields } from '../../src/status/publisher';

const run = { runId: 'r_1', orgId: 'org_a', action: 'deploy', invocationMethod: { type: 'WEBHOOK' } } as unknown as FrozenRun;

/** What happened, in order: ledger records, the call, status updates. */
type Event = string;

function ctx(signal = new AbortController().signal): MessageContext {
  return { received: {} as KafkaMessage, source: { topic: 't', partition: 0 }, signal, log: silentLogger() };
}

function reporter(events: Event[]): StatusReporter {
  return {
    forRun: () => ({
      report: async (fields: StatusFields) => void events.push(`report ${fields.status}${fields.call ? ` ${fields.call}` : ''}`),
      rejection: () => null,
    }),
  } as unknown as StatusReporter;
}

function invoker(events: Event[], outcome: InvocationOutcome = { status: 'succeeded' }): Invoker {
  return {
    type: 'WEBHOOK',
    announce: () => 'if-slow',
    describe: () => 'the backend',
    invoke: async () => {
      events.push('call');
      return outcome;
    },
    close: async () => undefined,
  };
}

/** A ledger that records its own calls, failing its first `failStarts` starts and every end when `failEnds`. */
function ledger(events: Event[], opts: { failStarts?: number; failEnds?: boolean } = {}): CallLedger {
  let failStarts = opts.failStarts ?? 0;
  return {
    doubtMs: 0,
    current: async () => undefined,
    record: () => undefined,
    awaitRun: async () => undefined,
    started: (r) => {
      if (failStarts-- > 0) throw new Error('disk full');
      events.push(`started ${r.runId}`);
    },
    ended: (r, outcome) => {
      if (opts.failEnds) throw new Error('disk full');
      events.push(`ended ${r.runId} ${outcome}`);
    },
  };
}

const stage = (events: Event[], over: { ledger?: CallLedger; recordsCalls?: boolean } = {}) =>
  new InvokeStage({ reporter: reporter(events), metrics: new RouterMetrics(), followers: new Followers(), ...over });

describe('stage "invoke" with a ledger that records its own calls (an agent)', () => {
  test('the start is recorded before the call, the end once the outcome is reported; nothing goes on the status topic as `call`', async () => {
    const events: Event[] = [];
    await stage(events, { ledger: ledger(events) }).apply(ctx(), run, invoker(events));
    expect(events).toEqual(['started r_1', 'call', 'report IN_PROGRESS', 'report SUCCESS', 'ended r_1 succeeded']);
  });

  test('while the start cannot be recorded the run is not called; once it can, it is', async () => {
    const events: Event[] = [];
    await stage(events, { ledger: ledger(events, { failStarts: 2 }) }).apply(ctx(), run, invoker(events));
    expect(events).toEqual(['started r_1', 'call', 'report IN_PROGRESS', 'report SUCCESS', 'ended r_1 succeeded']);
  });

  test('a partition stopped while the start cannot be recorded leaves the run uncalled, for redelivery', async () => {
    const events: Event[] = [];
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    await expect(stage(events, { ledger: ledger(events, { failStarts: Infinity }) }).apply(ctx(stop.signal), run, invoker(events))).rejects.toBeInstanceOf(AbortedError);
    expect(events).toEqual([]);
  });

  test('an end that cannot be recorded is logged, and the run goes on', async () => {
    const events: Event[] = [];
    await stage(events, { ledger: ledger(events, { failEnds: true }) }).apply(ctx(), run, invoker(events, { status: 'failed', code: 'BACKEND_UNAVAILABLE', summary: 'down' }));
    expect(events).toEqual(['started r_1', 'call', 'report IN_PROGRESS', 'report FAILURE']);
  });

  test('a router (the store as ledger) records its calls on the status topic, as before', async () => {
    const events: Event[] = [];
    const store: CallLedger = { doubtMs: 0, current: () => undefined, record: () => undefined, awaitRun: async () => undefined };
    await stage(events, { ledger: store, recordsCalls: true }).apply(ctx(), run, invoker(events));
    // STARTED (bookkeeping, before the call), then the run's log as without the ledger: a quick call is announced after it, then its outcome.
    expect(events).toEqual(['report IN_PROGRESS STARTED', 'call', 'report IN_PROGRESS', 'report SUCCESS ENDED']);
  });
});
