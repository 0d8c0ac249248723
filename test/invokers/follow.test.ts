import { BackendError, ErrorCodes } from '../../src/errors';
import { followJob, JobState } from '../../src/invokers/follow';
import { testContext } from '../helpers/invoke';

const job = (state: string, outcome: JobState['outcome'] = null): JobState => ({ id: '7', state, url: 'http://ci/7', outcome, summary: `job 7 ended ${state}` });

describe('followJob', () => {
  it('reports each change of state once, then the outcome', async () => {
    const t = testContext();
    const states = [job('queued'), job('running'), job('running'), job('success', 'SUCCESS')];
    await followJob({ ctx: t.ctx, signal: new AbortController().signal, intervalMs: 1, timeoutMs: 10_000, what: 'job 7', poll: async () => states.shift()! });
    expect(t.reports.map((r) => [r.status, r.statusLabel])).toEqual([
      ['IN_PROGRESS', 'queued'],
      ['IN_PROGRESS', 'running'],
      ['SUCCESS', 'success'],
    ]);
    expect(t.reports[2]).toMatchObject({ links: ['http://ci/7'], externalRunId: '7', summary: 'job 7 ended success' });
  });

  it('waits out retriable poll failures', async () => {
    const t = testContext();
    let n = 0;
    await followJob({
      ctx: t.ctx, signal: new AbortController().signal, intervalMs: 1, timeoutMs: 10_000, what: 'job 7', initialState: 'running',
      poll: async () => {
        if (++n < 3) throw new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, 'HTTP 502', { retriable: true });
        return job('failed', 'FAILURE');
      },
    });
    expect(t.reports.map((r) => r.status)).toEqual(['FAILURE']);
  });

  it('ends FAILURE when the job outlives its timeout, or when polling fails for good', async () => {
    const slow = testContext();
    await followJob({ ctx: slow.ctx, signal: new AbortController().signal, intervalMs: 5, timeoutMs: 30, what: 'job 7', poll: async () => job('running') });
    expect(slow.reports[slow.reports.length - 1]).toMatchObject({ status: 'FAILURE', statusLabel: 'TIMEOUT' });
    const broken = testContext();
    await followJob({
      ctx: broken.ctx, signal: new AbortController().signal, intervalMs: 1, timeoutMs: 1_000, what: 'job 7',
      poll: async () => {
        throw new BackendError(ErrorCodes.AUTH_FAILED, 'HTTP 401');
      },
    });
    expect(broken.reports).toEqual([expect.objectContaining({ status: 'FAILURE', statusLabel: 'FOLLOW_FAILED', summary: 'Following job 7 failed: HTTP 401' })]);
  });
});
