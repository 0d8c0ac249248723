import { silentLogger } from '../../src/log';
import { RouterMetrics } from '../../src/metrics/metrics';
import { PartitionBook } from '../../src/router/partitions';

const window = { maxInFlightPerPartition: 4, maxInFlight: 6, shutdownGraceMs: 20, commitIntervalMs: 100, sessionTimeoutMs: 30_000 };
const book = () => new PartitionBook(window, new RouterMetrics(), silentLogger());

/** Admission, backpressure, settling and revocation; commits against the broker are in test/integration. */
describe('PartitionBook', () => {
  it('admits in order, says when an offset was seen, and is full at the partition’s limit', () => {
    const b = book();
    const p = b.state('t', 0);
    expect([0n, 1n, 2n, 3n].map((o) => b.admit(p, o))).toEqual(['admitted', 'admitted', 'admitted', 'admitted']);
    expect(b.admit(p, 4n)).toBe('full');
    expect(b.admit(p, 2n)).toBe('seen');
    expect(b.inFlight).toBe(4);
  });

  it('is full at the router’s limit across partitions', () => {
    const b = book();
    const [p0, p1] = [b.state('t', 0), b.state('t', 1)];
    for (const o of [0n, 1n, 2n, 3n]) b.admit(p0, o);
    expect([0n, 1n].map((o) => b.admit(p1, o))).toEqual(['admitted', 'admitted']);
    expect(b.admit(p1, 2n)).toBe('full');
  });

  it('only a done message moves the low-water mark; a stopped one holds it for redelivery', () => {
    const b = book();
    const p = b.state('t', 0);
    for (const o of [10n, 11n, 12n]) b.admit(p, o);
    b.settle(p, 11n, true);
    expect(p.window.committable).toBe(10n);
    b.settle(p, 10n, false);
    expect(p.window.committable).toBe(10n);
    expect(b.inFlight).toBe(1);
    b.settle(p, 12n, true);
    expect(b.inFlight).toBe(0);
    expect(p.window.committable).toBe(10n);
  });

  it('resumes a paused partition once it is down to three quarters, and not while stopping', () => {
    const b = book();
    const p = b.state('t', 0);
    for (const o of [0n, 1n, 2n, 3n]) b.admit(p, o);
    let resumed = 0;
    p.resume = () => resumed++;
    b.settle(p, 0n, true);
    expect(resumed).toBe(1);
    expect(p.resume).toBeNull();
    for (const o of [4n]) b.admit(p, o);
    p.resume = () => resumed++;
    b.freeze();
    b.settle(p, 1n, true);
    expect(resumed).toBe(1);
  });

  it('a revoked partition resumes fetching (kafkajs keeps pauses across rebalances) and aborts its work after the grace', async () => {
    const b = book();
    const p = b.state('t', 0);
    b.admit(p, 0n);
    let resumed = false;
    p.resume = () => (resumed = true);
    b.assign(new Set(['t:1']));
    expect(resumed).toBe(true);
    expect(p.abort.signal.aborted).toBe(false);
    await new Promise<void>((r) => p.abort.signal.addEventListener('abort', () => r(), { once: true }));
    // A new state for a partition that comes back: the revoked one no longer counts.
    expect(b.state('t', 0)).not.toBe(p);
  });

  it('waits until idle, or says it was not', async () => {
    const b = book();
    const p = b.state('t', 0);
    b.admit(p, 0n);
    expect(await b.waitIdle(10)).toBe(false);
    const idle = b.waitIdle(5_000);
    b.settle(p, 0n, true);
    expect(await idle).toBe(true);
  });
});
