import { decodeTrigger } from '../../src/codec/decode';
import type { InvocationContext } from '../../src/invokers/invoker';
import { silentLogger } from '../../src/log';
import type { JsonObject } from '../../src/model/json';
import type { FrozenRun } from '../../src/model/run';
import { samplePortMessage } from '../../src/sample';
import type { StatusFields } from '../../src/status/publisher';

export async function runOf(invocationMethod: JsonObject, properties?: JsonObject, runId = 'r_test'): Promise<FrozenRun> {
  const r = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId, invocationMethod, properties }))));
  if (!r.ok) throw new Error(r.error.message);
  return r.run;
}

/** An InvocationContext that records reports and runs follow-ups on demand. */
export function testContext(signal: AbortSignal = new AbortController().signal) {
  const reports: StatusFields[] = [];
  const followUps: ((s: AbortSignal) => Promise<void>)[] = [];
  const ctx: InvocationContext = {
    signal,
    logger: silentLogger(),
    report: async (f) => void reports.push(f),
    follow: (task) => void followUps.push(task),
  };
  return {
    ctx,
    reports,
    followUps,
    /** Runs the follow-ups to their end. */
    async settle(): Promise<void> {
      await Promise.all(followUps.map((t) => t(new AbortController().signal)));
    },
  };
}
