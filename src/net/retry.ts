import { BackendError, ErrorCodes, RouterError, describeError } from '../errors';
import type { RetryConfig } from '../config/fragments';

/** Thrown when work stops because its signal aborted (shutdown, revocation). */
export class AbortedError extends RouterError {
  constructor(message = 'aborted') {
    super(ErrorCodes.ABORTED, message);
    this.name = 'AbortedError';
  }
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new AbortedError();
}

/** Waits `ms`, or throws AbortedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Full-jitter exponential backoff: a random wait in [0, min(max, base·2^n)). */
export function backoffDelay(attempt: number, policy: Pick<RetryConfig, 'initialDelayMs' | 'maxDelayMs'>, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryOutcome<T> {
  value: T;
  attempts: number;
}

/**
 * Runs `attempt` until it succeeds, throws a non-retriable error, runs out
 * of attempts, or would pass the deadline. The only place that decides to
 * retry; it reads nothing but `retriable` and an optional `retryAfterMs`.
 * Throws the last error, with `details.attempts` set.
 */
export async function withRetry<T>(
  policy: RetryConfig,
  signal: AbortSignal,
  attempt: (n: number, deadline: number) => Promise<T>,
  onRetry?: (err: RouterError, n: number, waitMs: number) => void,
): Promise<RetryOutcome<T>> {
  const deadline = Date.now() + policy.deadlineMs;
  for (let n = 1; ; n++) {
    throwIfAborted(signal);
    try {
      return { value: await attempt(n, deadline), attempts: n };
    } catch (err) {
      if (signal.aborted) throw new AbortedError();
      const error = err instanceof RouterError ? err : new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, describeError(err), { retriable: true, cause: err });
      error.details.attempts = n;
      if (!error.retriable || n >= policy.maxAttempts) throw error;
      const hinted = typeof error.details.retryAfterMs === 'number' ? error.details.retryAfterMs : 0;
      const wait = Math.max(hinted, backoffDelay(n, policy));
      if (Date.now() + wait >= deadline) {
        error.details.deadlineReached = true;
        throw error;
      }
      onRetry?.(error, n, wait);
      await sleep(wait, signal);
    }
  }
}

/**
 * Repeats `work` until it succeeds or `signal` aborts, waiting with capped
 * backoff between tries. For writes that must not be dropped (dead letters,
 * status updates, org topics) while the broker is away.
 */
export async function untilDone<T>(
  signal: AbortSignal,
  work: () => Promise<T>,
  onError?: (err: unknown, n: number) => void,
  /** Errors that end the retrying: thrown to the caller at once. */
  isFinal?: (err: unknown) => boolean,
): Promise<T> {
  for (let n = 1; ; n++) {
    throwIfAborted(signal);
    try {
      return await work();
    } catch (err) {
      if (signal.aborted) throw new AbortedError();
      if (isFinal?.(err)) throw err;
      onError?.(err, n);
      await sleep(backoffDelay(n, { initialDelayMs: 200, maxDelayMs: 5_000 }) + 50, signal);
    }
  }
}

/**
 * Waits for `work` (shared, owned by someone else) as long as `signal`
 * allows: the caller's abort ends the wait with AbortedError and leaves the
 * work running for its other waiters.
 */
export function waitFor<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new AbortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
