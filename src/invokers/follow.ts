import { RouterError, describeError } from '../errors';
import type { InvocationContext } from './invoker';
import { AbortedError, sleep } from '../net/retry';

/** What a poll learned about a remote job (a workflow run, a pipeline). */
export interface JobState {
  id: string;
  /** The backend's own word for its state (queued, running, success...). */
  state: string;
  url: string;
  /** Set when the job has ended. */
  outcome: 'SUCCESS' | 'FAILURE' | null;
  /** One sentence for the terminal update. */
  summary: string;
}

export interface FollowOptions {
  ctx: InvocationContext;
  signal: AbortSignal;
  /** First wait between polls; it grows to at most a minute. */
  intervalMs: number;
  /** Past this time from the start, the run ends FAILURE. */
  timeoutMs: number;
  /** For messages: "Workflow run 42 of acme/api". */
  what: string;
  initialState?: string;
  /** One poll. Retriable errors are waited out; others end the run FAILURE. */
  poll(signal: AbortSignal): Promise<JobState>;
}

/**
 * Follows a remote job to its end: an IN_PROGRESS update on each change of
 * state, then SUCCESS or FAILURE, or FAILURE when it outlives its timeout.
 * Shared by the GitHub and GitLab invokers.
 */
export async function followJob(o: FollowOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let last = o.initialState ?? '';
  try {
    for (let n = 1; ; n++) {
      await sleep(Math.min(o.intervalMs * Math.ceil(n / 3), 60_000), o.signal);
      let job: JobState;
      try {
        job = await o.poll(o.signal);
      } catch (err) {
        if (err instanceof RouterError && err.retriable) {
          o.ctx.logger.warn({ error: err.message }, `polling ${o.what} failed; will poll again`);
          const hinted = err.details.retryAfterMs;
          if (typeof hinted === 'number') await sleep(hinted, o.signal);
          continue;
        }
        throw err;
      }
      const common = { statusLabel: job.state, links: [job.url], externalRunId: job.id };
      if (job.outcome) {
        await o.ctx.report({ ...common, status: job.outcome, summary: job.summary });
        return;
      }
      if (job.state !== last) {
        last = job.state;
        await o.ctx.report({ ...common, status: 'IN_PROGRESS', log: `${o.what} is ${job.state}` });
      }
      if (Date.now() > deadline) {
        await o.ctx.report({ ...common, status: 'FAILURE', statusLabel: 'TIMEOUT', summary: `${o.what} did not finish within ${o.timeoutMs} ms` });
        return;
      }
    }
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    await o.ctx.report({ status: 'FAILURE', statusLabel: 'FOLLOW_FAILED', summary: `Following ${o.what} failed: ${describeError(err)}` });
  }
}
