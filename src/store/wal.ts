import { StoreError } from './errors.js';
import type { StoreFile } from './sys.js';
import {
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  frameChecksum,
  frameOffset,
  parseFrameHeader,
  parseWalHeader,
  type WalChecksum,
  type WalHeader,
} from './wal-format.js';

/** One transaction SQLite has just finished writing to the WAL: its commit frame is complete and every frame checks out. */
export interface WalTransaction {
  /** Offset of its first frame and the bytes of its frames: the LTX file's WALOffset and WALSize. */
  offset: number;
  size: number;
  salt1: number;
  salt2: number;
  /** Database size in pages after it (the commit frame's field). */
  commit: number;
  /** Frame offset of the newest version of each page it writes, pgno ascending. */
  pages: Array<{ pgno: number; frame: number }>;
  /** Checksum of its commit frame: where the next transaction's chain starts. */
  endChecksum: WalChecksum;
}

/** What the store knows about a page version committed to the WAL. */
interface CommittedPage {
  /** Offset of the frame holding the newest committed version. */
  frame: number;
  sum: bigint;
  /** Checksums of every committed version in this WAL: what a checkpoint may copy into the database file. */
  versions: Set<bigint>;
}

/**
 * The byte ranges of one frame the current transaction has written. The
 * kernel splits SQLite's page write at its own page boundaries, so a frame
 * usually arrives as three WRITEs: its header, then the page in two parts.
 */
class FrameCoverage {
  /** Sorted, merged [start, end) ranges relative to the frame start. */
  private ranges: Array<[number, number]> = [];

  add(start: number, end: number): void {
    const next: Array<[number, number]> = [];
    let s = start;
    let e = end;
    for (const [a, b] of this.ranges) {
      if (b < s || a > e) next.push([a, b]);
      else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    next.push([s, e]);
    next.sort((x, y) => x[0] - y[0]);
    this.ranges = next;
  }

  covers(start: number, end: number): boolean {
    return this.ranges.some(([a, b]) => a <= start && b >= end);
  }
}

/**
 * The `-wal` file of one database as the store tracks it. SQLite appends a
 * transaction's frames after the last committed one, each frame as a
 * 24-byte header and a page, the commit frame last. The store never needs
 * SQLite's locks to see a commit: once a commit frame has been written in
 * full and the frames from the end of the last commit up to it are a valid
 * chain (salts and cumulative checksum, as SQLite's own recovery demands),
 * the transaction is complete on disk. That happens inside the WRITE
 * request that completes it, before SQLite publishes the transaction in
 * the wal-index, so the store makes the LTX file durable first and no
 * reader or checkpoint can see frames the store has not captured.
 */
export class WalLog {
  private file: StoreFile | null = null;
  private header: WalHeader | null = null;
  /** End of the last captured transaction: where the next transaction's frames start. */
  private _committedEnd = 0;
  private committedChecksum: WalChecksum = [0, 0];
  private readonly committed = new Map<number, CommittedPage>();
  /** Frames written since the last commit, by offset: which bytes of each. */
  private readonly written = new Map<number, FrameCoverage>();

  constructor(private readonly name: string) {}

  get exists(): boolean {
    return this.file !== null;
  }

  get handle(): StoreFile | null {
    return this.file;
  }

  get pageSize(): number {
    return this.header?.pageSize ?? 0;
  }

  get walHeader(): WalHeader | null {
    return this.header;
  }

  get committedEnd(): number {
    return this._committedEnd;
  }

  /**
   * Pages whose newest committed version is in the WAL (not yet, or not
   * only, in the database file). Pages past the database's current size
   * may be listed: callers look only at pages up to it.
   */
  get committedPages(): ReadonlyMap<number, { frame: number; sum: bigint }> {
    return this.committed;
  }

  /** Adopts the file (an empty one, or one whose frames recovery already moved into the database). */
  attach(file: StoreFile | null): void {
    this.file = file;
    this.reset(null);
  }

  private reset(header: WalHeader | null): void {
    this.header = header;
    this._committedEnd = header === null ? 0 : WAL_HEADER_SIZE;
    this.committedChecksum = header === null ? [0, 0] : header.checksum;
    this.committed.clear();
    this.written.clear();
  }

  /**
   * Whether every committed page is in the database file with its newest
   * version and the file has the committed size: SQLite only restarts,
   * truncates or deletes the WAL then.
   */
  backfilled(dbFileSum: (pgno: number) => bigint, pageN: number): boolean {
    for (const [pgno, p] of this.committed) {
      if (pgno <= pageN && dbFileSum(pgno) !== p.sum) return false;
    }
    return true;
  }

  /** Whether `sum` is a committed version of `pgno` in this WAL: what a checkpoint may write to the database file. */
  isCommittedVersion(pgno: number, sum: bigint): boolean {
    return this.committed.get(pgno)?.versions.has(sum) ?? false;
  }

  /**
   * Records a write of SQLite's. `backfilled` says whether the WAL's
   * committed frames are all in the database file (a new header may only
   * be written then). Returns the transaction this write completed, if
   * any: the caller captures it, then calls `commit()`.
   */
  async write(offset: number, data: Uint8Array, backfilled: () => boolean): Promise<WalTransaction | null> {
    const file = this.requireFile();
    if (offset < WAL_HEADER_SIZE) {
      if (offset !== 0 || data.length < WAL_HEADER_SIZE) {
        throw this.invalid(`a ${data.length}-byte write at offset ${offset} splits the WAL header`);
      }
      const header = parseWalHeader(data.subarray(0, WAL_HEADER_SIZE));
      if (header === null) throw this.invalid('the new WAL header is not valid');
      if (!backfilled()) {
        throw this.invalid('SQLite restarted the WAL before every committed frame was in the database file');
      }
      await file.write(data, offset);
      this.reset(header);
      if (data.length === WAL_HEADER_SIZE) return null;
      return this.recordFrames(WAL_HEADER_SIZE, data.subarray(WAL_HEADER_SIZE));
    }
    if (this.header === null) throw this.invalid(`frames written at offset ${offset} before any WAL header`);
    if (offset < this._committedEnd) {
      // LiteFS #233: committed frames are history; only a new header (a
      // restart, after a full checkpoint) may reuse their space.
      throw this.invalid(`a write at offset ${offset} would overwrite committed frames (they end at ${this._committedEnd})`);
    }
    await file.write(data, offset);
    return this.recordFrames(offset, data);
  }

  /** Marks which frame parts a write covered; checks for a complete transaction when a commit frame is touched. */
  private async recordFrames(offset: number, data: Uint8Array): Promise<WalTransaction | null> {
    const ps = this.pageSize;
    const frameSize = WAL_FRAME_HEADER_SIZE + ps;
    const end = offset + data.length;
    let commitFrameDone = false;
    for (let k = Math.floor((offset - WAL_HEADER_SIZE) / frameSize); ; k++) {
      const start = frameOffset(k, ps);
      if (start >= end) break;
      let cov = this.written.get(start);
      if (cov === undefined) {
        cov = new FrameCoverage();
        this.written.set(start, cov);
      }
      cov.add(Math.max(offset, start) - start, Math.min(end, start + frameSize) - start);
      if (cov.covers(0, frameSize) && !commitFrameDone) {
        // Only a commit frame can end a transaction: look before walking the chain.
        const h = await this.requireFile().read(8, start);
        commitFrameDone = h.length === 8 && h.readUInt32BE(4) !== 0;
      }
    }
    if (!commitFrameDone) return null;
    return this.findTransaction();
  }

  /**
   * Walks the frames written since the last commit, from the first, while
   * they are complete and chain correctly; the first valid commit frame on
   * that walk ends a transaction. Reads the frames back from the file
   * (just written, so from the page cache).
   */
  private async findTransaction(): Promise<WalTransaction | null> {
    const header = this.header!;
    const file = this.requireFile();
    const ps = header.pageSize;
    const frameSize = WAL_FRAME_HEADER_SIZE + ps;
    let chain = this.committedChecksum;
    const newest = new Map<number, number>();
    const buf = Buffer.allocUnsafe(frameSize);
    for (let at = this._committedEnd; ; at += frameSize) {
      if (this.written.get(at)?.covers(0, frameSize) !== true) return null;
      const frame = await file.read(frameSize, at, buf);
      if (frame.length !== frameSize) return null;
      const next = frameChecksum(header, chain, frame.subarray(0, WAL_FRAME_HEADER_SIZE), frame.subarray(WAL_FRAME_HEADER_SIZE));
      const fh = parseFrameHeader(frame);
      if (next === null || next[0] !== fh.checksum[0] || next[1] !== fh.checksum[1]) return null;
      chain = next;
      newest.set(fh.pgno, at);
      if (fh.commit !== 0) {
        const pages = [...newest]
          .filter(([pgno]) => pgno <= fh.commit)
          .sort((a, b) => a[0] - b[0])
          .map(([pgno, frameAt]) => ({ pgno, frame: frameAt }));
        return {
          offset: this._committedEnd,
          size: at + frameSize - this._committedEnd,
          salt1: header.salt1,
          salt2: header.salt2,
          commit: fh.commit,
          pages,
          endChecksum: chain,
        };
      }
    }
  }

  /** Reads the page in the frame at `frame`. */
  async readFramePage(frame: number): Promise<Buffer> {
    const ps = this.pageSize;
    const data = await this.requireFile().read(ps, frame + WAL_FRAME_HEADER_SIZE);
    if (data.length !== ps) throw this.invalid(`the frame at offset ${frame} is cut short`);
    return data;
  }

  /** The transaction is captured: its pages become the newest committed versions. */
  commit(tx: WalTransaction, sums: ReadonlyMap<number, bigint>): void {
    for (const p of tx.pages) {
      const sum = sums.get(p.pgno);
      if (sum === undefined) continue;
      const entry = this.committed.get(p.pgno);
      if (entry === undefined) this.committed.set(p.pgno, { frame: p.frame, sum, versions: new Set([sum]) });
      else {
        entry.frame = p.frame;
        entry.sum = sum;
        entry.versions.add(sum);
      }
    }
    this._committedEnd = tx.offset + tx.size;
    this.committedChecksum = tx.endChecksum;
    this.written.clear();
  }

  /** A transaction that could not be captured: SQLite is told it failed, and rewrites its frames. */
  abandon(): void {
    this.written.clear();
  }

  /**
   * SQLite truncates the WAL: to 0 after a TRUNCATE checkpoint, or to its
   * journal_size_limit past the frames in use. Never into committed frames
   * that are not yet in the database file.
   */
  async truncate(size: number, backfilled: () => boolean): Promise<void> {
    const file = this.requireFile();
    if (size === 0) {
      if (!backfilled()) throw this.invalid('SQLite truncated the WAL before every committed frame was in the database file');
      await file.truncate(0);
      this.reset(null);
      return;
    }
    if (size < this._committedEnd) {
      throw this.invalid(`truncating the WAL to ${size} bytes would cut committed frames (they end at ${this._committedEnd})`);
    }
    await file.truncate(size);
    for (const at of this.written.keys()) if (at + WAL_FRAME_HEADER_SIZE + this.pageSize > size) this.written.delete(at);
  }

  /** SQLite deletes the WAL (the last connection closed, or the database left WAL mode). */
  async detach(backfilled: () => boolean): Promise<StoreFile | null> {
    if (this.header !== null && this.committed.size > 0 && !backfilled()) {
      throw this.invalid('SQLite deleted the WAL before every committed frame was in the database file');
    }
    const file = this.file;
    this.file = null;
    this.reset(null);
    return file;
  }

  /** Forgets everything without checks (the store replaced the database: import, apply). */
  clear(): void {
    this.reset(null);
  }

  private requireFile(): StoreFile {
    if (this.file === null) throw new StoreError('ERR_STORE_DB_NOT_FOUND', `${this.name}-wal: no such file`);
    return this.file;
  }

  private invalid(why: string): StoreError {
    return new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}-wal: ${why}`);
  }
}
