/**
 * The in-flight runs of one partition. Offsets enter in increasing order and
 * complete in any order; `committable` is the low-water mark: the offset to
 * commit so that everything below it has its outcome acknowledged, and
 * nothing at or above it is skipped after a restart.
 */
export class OffsetWindow {
  private offsets: bigint[] = [];
  private done: boolean[] = [];
  private head = 0;
  private pending = 0;
  /** The next offset to commit; null until the first offset enters. */
  private low: bigint | null = null;
  /** The next offset expected from the fetcher (to spot re-deliveries). */
  private next: bigint | null = null;

  get inFlight(): number {
    return this.pending;
  }

  get committable(): bigint | null {
    return this.low;
  }

  /** True when `offset` was already admitted (re-fetched after a seek or rejoin). */
  seen(offset: bigint): boolean {
    return this.next !== null && offset < this.next;
  }

  add(offset: bigint): void {
    if (this.next !== null && offset < this.next) throw new Error(`offset ${offset} was already admitted`);
    if (this.low === null) this.low = offset;
    this.offsets.push(offset);
    this.done.push(false);
    this.pending++;
    this.next = offset + 1n;
  }

  /** Marks `offset` done; returns true when the low-water mark moved. */
  complete(offset: bigint): boolean {
    // Completions cluster near the head; search from there.
    let i = this.head;
    while (i < this.offsets.length && this.offsets[i] !== offset) i++;
    if (i === this.offsets.length || this.done[i]) return false;
    this.done[i] = true;
    this.pending--;
    let moved = false;
    while (this.head < this.offsets.length && this.done[this.head]) {
      this.low = this.offsets[this.head]! + 1n;
      this.head++;
      moved = true;
    }
    if (this.head > 1024 && this.head * 2 > this.offsets.length) {
      this.offsets = this.offsets.slice(this.head);
      this.done = this.done.slice(this.head);
      this.head = 0;
    }
    return moved;
  }
}
