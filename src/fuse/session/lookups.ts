/**
 * Kernel lookup counts per node id: how many references the kernel holds,
 * as established by successful entry replies minus FORGETs. A filesystem
 * may free a node's state only when its count is 0 (and it is unlinked).
 */
export class LookupCounts {
  private readonly counts = new Map<bigint, bigint>();

  add(nodeid: bigint, n = 1n): void {
    this.counts.set(nodeid, (this.counts.get(nodeid) ?? 0n) + n);
  }

  /** Subtracts `n` and returns what remains (never below 0). */
  forget(nodeid: bigint, n: bigint): bigint {
    const left = (this.counts.get(nodeid) ?? 0n) - n;
    if (left <= 0n) {
      this.counts.delete(nodeid);
      return 0n;
    }
    this.counts.set(nodeid, left);
    return left;
  }

  get(nodeid: bigint): bigint {
    return this.counts.get(nodeid) ?? 0n;
  }

  /** Number of node ids the kernel currently references. */
  get size(): number {
    return this.counts.size;
  }
}
