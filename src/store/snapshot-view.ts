import type { Pos } from '../ltx/index.js';

/**
 * A consistent view of one database as of one position, for as long as a
 * snapshot or an export reads it, without stopping anyone: whoever is about
 * to overwrite a page the view still needs (a SQLite writer, a checkpoint,
 * a WAL restart, an apply) first hands the view the page's current bytes.
 * Pages are read in ascending order, so "still needs" is every page at or
 * after the reader's cursor.
 */
export class SnapshotView {
  /** Pages below this have been read. */
  private cursor = 0;
  private readonly kept = new Map<number, Buffer>();
  private keptBytes = 0;
  private _overflow = false;

  constructor(
    readonly pos: Pos,
    readonly pageSize: number,
    readonly pageN: number,
    /** Frame offsets of the pages whose committed version is in the WAL, as of `pos`. */
    readonly walFrames: ReadonlyMap<number, number>,
    private readonly maxKeptBytes: number,
  ) {}

  /** Whether the view still needs `pgno`'s bytes as they are now. */
  needs(pgno: number): boolean {
    return pgno >= this.cursor && pgno <= this.pageN && !this.kept.has(pgno);
  }

  /** Whether the view reads `pgno` from the WAL frame at `frame`. */
  needsFrame(pgno: number, frame: number): boolean {
    return this.needs(pgno) && this.walFrames.get(pgno) === frame;
  }

  /** Keeps `pgno`'s bytes for the reader (a copy). */
  keep(pgno: number, data: Uint8Array): void {
    if (this.kept.has(pgno)) return;
    if (this.keptBytes + data.length > this.maxKeptBytes) {
      // Too much changed under a slow reader: it fails and retries, rather
      // than the daemon growing without bound.
      this._overflow = true;
      return;
    }
    this.kept.set(pgno, Buffer.from(data));
    this.keptBytes += data.length;
  }

  /** More pages changed under the view than it may keep: its copy cannot be trusted. */
  get overflow(): boolean {
    return this._overflow;
  }

  /** The kept bytes of `pgno`, if a writer saved them; advances the cursor past it. */
  take(pgno: number): Buffer | undefined {
    this.cursor = pgno + 1;
    const b = this.kept.get(pgno);
    if (b !== undefined) {
      this.kept.delete(pgno);
      this.keptBytes -= b.length;
    }
    return b;
  }
}
