import { SignInGuard } from '../../src/api/sign-in-guard';

/** The guard's arithmetic, on a clock of its own: budgets, their window and Retry-After. */
describe('SignInGuard', () => {
  const options = { perPair: 3, perAddress: 5, perClient: 8, windowMs: 60_000, delayMs: 100, limitedDelayMs: 1_000 };

  test('a pair is refused past its budget until its oldest failures leave the window', () => {
    const guard = new SignInGuard(options);
    const at = (s: number) => 1_000_000 + s * 1000;
    expect([0, 1, 2].map((s) => guard.failed('a', 'c', at(s)).status)).toEqual([401, 401, 401]);
    const fourth = guard.failed('a', 'c', at(3));
    expect(fourth).toMatchObject({ status: 429, delayMs: 1_000 });
    // The failure at 1 s must leave for the next one to fit (0 s leaves first): at 61 s, 58 s from now.
    expect(fourth.retryAfterMs).toBe(58_000);
    expect(guard.failed('a', 'c', at(60.5)).status).toBe(429);
    // The window then held 1, 2, 3 and 60.5 s; at 62 s only 2 of them are left, and this one fits.
    expect(guard.failed('a', 'c', at(62)).status).toBe(401);
  });

  test('an address and a client have budgets of their own, across the others', () => {
    const guard = new SignInGuard(options);
    const byAddress = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((c) => guard.failed('a', c, 0).status);
    expect(byAddress).toEqual([401, 401, 401, 401, 401, 429]);
    const byClient = Array.from({ length: 9 }, (_, i) => guard.failed(`addr-${i}`, 'target', 0));
    expect(byClient.map((v) => v.status)).toEqual([401, 401, 401, 401, 401, 401, 401, 401, 429]);
    expect(byClient.map((v) => v.clientCapReached)).toEqual([false, false, false, false, false, false, false, false, true]);
    expect(guard.failed('addr-9', 'target', 0).clientCapReached).toBe(false);
  });
});
