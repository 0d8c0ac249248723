/**
 * Slows down guessing of client secrets without ever refusing the right
 * one. The secret is always checked; only failures are counted and only
 * failures wait or are answered 429. So wrong guesses from an address (a
 * proxy's, a NAT's) or for a client cannot keep that client out.
 *
 * Failures are counted in a sliding window per (address, client), per
 * address and per client across every address. Each failure waits before
 * it is answered; once any budget is spent it waits the longest and is
 * answered 429 with Retry-After. A guesser gets one answer per connection
 * per delay, whatever it sends.
 */
export interface GuardOptions {
  /** Failures per (address, client) in the window before 429. */
  perPair: number;
  /** Failures per address, whatever the client, before 429. */
  perAddress: number;
  /** Failures per client, from every address, before 429. */
  perClient: number;
  windowMs: number;
  /** Every failure waits this long… */
  delayMs: number;
  /** …and this long once a budget is spent. */
  limitedDelayMs: number;
}

export const GUARD_DEFAULTS: GuardOptions = {
  perPair: 10,
  perAddress: 50,
  perClient: 100,
  windowMs: 60_000,
  delayMs: 200,
  limitedDelayMs: 3_000,
};

export interface Verdict {
  /** 401 within the budgets, 429 past one. */
  status: 401 | 429;
  /** How long to wait before answering. */
  delayMs: number;
  /** When the spent budget frees up again (0 when none is). */
  retryAfterMs: number;
  /** The client's failures passed its cap with this one (log it once). */
  clientCapReached: boolean;
}

/** Keys kept per map: a spray of addresses or client ids cannot grow memory without bound. */
const MAX_KEYS = 50_000;

class Window {
  private readonly hits = new Map<string, number[]>();

  constructor(private readonly windowMs: number) {}

  /** Records a hit of `key`; its hits in the window, oldest first. */
  add(key: string, now: number): number[] {
    const recent = this.recent(key, now);
    recent.push(now);
    // Re-inserted: the map's order is least recently failed first, which is what goes.
    this.hits.delete(key);
    this.hits.set(key, recent);
    if (this.hits.size > MAX_KEYS) this.hits.delete(this.hits.keys().next().value!);
    return recent;
  }

  private recent(key: string, now: number): number[] {
    return (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
  }
}

export class SignInGuard {
  readonly options: GuardOptions;
  private readonly pairs: Window;
  private readonly addresses: Window;
  private readonly clients: Window;

  constructor(options: Partial<GuardOptions> = {}) {
    this.options = { ...GUARD_DEFAULTS, ...options };
    this.pairs = new Window(this.options.windowMs);
    this.addresses = new Window(this.options.windowMs);
    this.clients = new Window(this.options.windowMs);
  }

  /** Records a failed sign-in of `clientId` from `address` and says how to answer it. */
  failed(address: string, clientId: string, now = Date.now()): Verdict {
    const o = this.options;
    const client = this.clients.add(clientId, now);
    const spent = [
      { hits: this.pairs.add(`${address}\u0000${clientId}`, now), budget: o.perPair },
      { hits: this.addresses.add(address, now), budget: o.perAddress },
      { hits: client, budget: o.perClient },
    ].filter((b) => b.hits.length > b.budget);
    const clientCapReached = client.length === o.perClient + 1;
    if (spent.length === 0) return { status: 401, delayMs: o.delayMs, retryAfterMs: 0, clientCapReached: false };
    // Free again when the oldest failure that keeps each spent budget over its limit leaves the window.
    const retryAfterMs = Math.max(...spent.map((b) => b.hits[b.hits.length - b.budget]! + o.windowMs - now));
    return { status: 429, delayMs: o.limitedDelayMs, retryAfterMs, clientCapReached };
  }
}
