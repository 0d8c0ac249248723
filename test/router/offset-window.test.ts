import { OffsetWindow } from '../../src/router/offset-window';

describe('OffsetWindow', () => {
  it('commits only the low-water mark as runs complete out of order', () => {
    const w = new OffsetWindow();
    expect(w.committable).toBeNull();
    for (const o of [10n, 11n, 12n, 13n]) w.add(o);
    expect(w.inFlight).toBe(4);
    expect(w.complete(12n)).toBe(false);
    expect(w.committable).toBe(10n);
    expect(w.complete(10n)).toBe(true);
    expect(w.committable).toBe(11n);
    expect(w.complete(11n)).toBe(true);
    expect(w.committable).toBe(13n);
    expect(w.complete(13n)).toBe(true);
    expect(w.committable).toBe(14n);
    expect(w.inFlight).toBe(0);
  });

  it('tolerates gaps (compacted or transactional offsets)', () => {
    const w = new OffsetWindow();
    w.add(5n);
    w.add(9n);
    w.complete(9n);
    expect(w.committable).toBe(5n);
    w.complete(5n);
    expect(w.committable).toBe(10n);
  });

  it('spots re-fetched offsets and refuses to admit them twice', () => {
    const w = new OffsetWindow();
    w.add(0n);
    w.add(1n);
    expect(w.seen(1n)).toBe(true);
    expect(w.seen(2n)).toBe(false);
    expect(() => w.add(1n)).toThrow(/already admitted/);
    expect(w.complete(7n)).toBe(false);
  });

  it('stays correct across many completions (compaction of its arrays)', () => {
    const w = new OffsetWindow();
    for (let i = 0n; i < 5000n; i++) w.add(i);
    for (let i = 4999n; i >= 0n; i--) w.complete(i);
    expect(w.committable).toBe(5000n);
    expect(w.inFlight).toBe(0);
    w.add(5000n);
    w.complete(5000n);
    expect(w.committable).toBe(5001n);
  });
});
