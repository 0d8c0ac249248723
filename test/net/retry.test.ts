import { RETRY_DEFAULTS } from '../../src/config/fragments';
import { BackendError, ErrorCodes } from '../../src/errors';
import { AbortedError, backoffDelay, sleep, withRetry } from '../../src/net/retry';

const fast = { ...RETRY_DEFAULTS, initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 4, deadlineMs: 5_000 };
const retriable = () => new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, 'HTTP 503', { retriable: true });

describe('retry', () => {
  it('draws full-jitter delays below an exponentially growing, capped ceiling', () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 1_000 };
    expect(backoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(3, policy, () => 0.999)).toBe(399);
    expect(backoffDelay(10, policy, () => 0.999)).toBe(999);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });

  it('retries retriable errors until success and counts the attempts', async () => {
    let n = 0;
    const r = await withRetry(fast, new AbortController().signal, async () => {
      if (++n < 3) throw retriable();
      return 'ok';
    });
    expect(r).toEqual({ value: 'ok', attempts: 3 });
  });

  it('stops at once on a non-retriable error', async () => {
    let n = 0;
    const err = await withRetry(fast, new AbortController().signal, async () => {
      n++;
      throw new BackendError(ErrorCodes.BACKEND_REJECTED, 'HTTP 400');
    }).catch((e: BackendError) => e);
    expect(n).toBe(1);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).details.attempts).toBe(1);
  });

  it('gives up after maxAttempts', async () => {
    let n = 0;
    const err = await withRetry(fast, new AbortController().signal, async () => {
      n++;
      throw retriable();
    }).catch((e: BackendError) => e);
    expect(n).toBe(4);
    expect((err as BackendError).details.attempts).toBe(4);
  });

  it('honours Retry-After but never waits past the deadline', async () => {
    const t0 = Date.now();
    let n = 0;
    const err = await withRetry({ ...fast, deadlineMs: 300 }, new AbortController().signal, async () => {
      n++;
      throw new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, '429', { retriable: true, details: { retryAfterMs: 10_000 } });
    }).catch((e: BackendError) => e);
    expect(n).toBe(1);
    expect((err as BackendError).details.deadlineReached).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('aborts a wait when the signal fires', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
  });
});
