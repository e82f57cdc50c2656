/**
 * Per-page checksums of one database file, plus their running XOR.
 *
 * The database checksum is FLAG | XOR(page checksums), and XOR is its own
 * inverse, so replacing a page's checksum is two XORs: a commit costs
 * O(pages written), never O(database). A zero entry means "unknown", which
 * only legitimately happens for the lock page and for pages past the end of
 * the file; `missing` finds the others so a caller can fill them from disk
 * instead of publishing a wrong checksum.
 */
const FLAG = 1n << 63n;
const LOW63 = FLAG - 1n;

export class PageChecksums {
  private sums = new BigUint64Array(0);
  /** XOR of the low 63 bits of every non-zero entry. */
  private xor = 0n;
  /** Number of non-zero entries. */
  private known = 0;
  /** Highest pgno that may hold a non-zero entry. */
  private high = 0;

  constructor(private readonly lockPgno: number) {}

  get(pgno: number): bigint {
    return pgno >= 1 && pgno <= this.sums.length ? this.sums[pgno - 1]! : 0n;
  }

  set(pgno: number, checksum: bigint): void {
    if (pgno < 1) throw new RangeError(`page number ${pgno} out of range`);
    if (pgno === this.lockPgno) checksum = 0n;
    if (pgno > this.sums.length) this.grow(pgno);
    const old = this.sums[pgno - 1]!;
    if (old !== 0n) {
      this.xor ^= old & LOW63;
      this.known--;
    }
    if (checksum !== 0n) {
      this.xor ^= checksum & LOW63;
      this.known++;
      if (pgno > this.high) this.high = pgno;
    }
    this.sums[pgno - 1] = checksum;
  }

  /** Forgets every page after `pageCount` (the file was truncated). */
  truncate(pageCount: number): void {
    for (let pgno = this.high; pgno > pageCount; pgno--) {
      const old = this.sums[pgno - 1]!;
      if (old !== 0n) {
        this.xor ^= old & LOW63;
        this.known--;
        this.sums[pgno - 1] = 0n;
      }
    }
    if (this.high > pageCount) this.high = pageCount;
  }

  /** Pages in 1..pageCount (lock page excluded) with no checksum. */
  missing(pageCount: number): number[] {
    const expected = pageCount - (this.lockPgno <= pageCount ? 1 : 0);
    if (this.high <= pageCount && this.known === expected) return [];
    const out: number[] = [];
    for (let pgno = 1; pgno <= pageCount; pgno++) {
      if (pgno !== this.lockPgno && this.get(pgno) === 0n) out.push(pgno);
    }
    return out;
  }

  /**
   * The database checksum for a database of `pageCount` pages. Entries past
   * `pageCount` must have been truncated and none may be missing; both are
   * programming errors in the caller, so they throw rather than return a
   * checksum that would later fail verification on every replica.
   */
  checksum(pageCount: number): bigint {
    if (pageCount === 0 && this.known === 0) return FLAG;
    if (this.high > pageCount) {
      throw new Error(`page checksums tracked past page ${pageCount} (up to ${this.high}); truncate first`);
    }
    const missing = this.missing(pageCount);
    if (missing.length > 0) {
      throw new Error(`missing checksum for page ${missing[0]} of ${pageCount}`);
    }
    return FLAG | this.xor;
  }

  clear(): void {
    this.sums = new BigUint64Array(0);
    this.xor = 0n;
    this.known = 0;
    this.high = 0;
  }

  private grow(pgno: number): void {
    let size = Math.max(64, this.sums.length);
    while (size < pgno) size *= 2;
    const next = new BigUint64Array(size);
    next.set(this.sums);
    this.sums = next;
  }
}
