import { randomBytes } from 'node:crypto';
import { checksumPage, type Pos } from '../ltx/index.js';
import type { StoreFile, StoreFS } from './sys.js';

/*
 * SQLite does not journal a free-list page it reuses: its old content is
 * garbage to SQLite. After a rollback such a page keeps the aborted
 * transaction's bytes, so the file is logically the last commit but not
 * byte for byte, and its checksum no longer matches the newest LTX file.
 * After a crash mid-transaction that makes startup recovery refuse the
 * database (LiteFS #428 looks like this). Which pages SQLite journaled
 * cannot be told reliably from the journal writes (the kernel splits them
 * at its page boundaries), so the undo log keeps the committed bytes of
 * every page a transaction overwrites, read just before its first
 * overwrite; putting committed bytes back is harmless for journaled pages.
 *
 * Layout: a 40-byte header (magic "LFSU", version 2, page size, a random
 * salt, the position the transaction started from), then records of
 * `u32 pgno ‖ page ‖ u64 (checksumPage(pgno, page) XOR salt)`. Each
 * transaction that writes pages starts a new generation: a new header and
 * salt at offset 0, so records of an older, longer generation left behind
 * them never verify. Records only count when the header's position equals
 * the position recovery settles on. Nothing is fsynced: a process crash
 * (the daemon killed) keeps the log in the page cache; a power loss at the
 * wrong moment can still leave free pages different (the startup check
 * then reports it).
 */

const MAGIC = 0x4c465355; // "LFSU"
const VERSION = 2;
export const UNDO_HEADER_SIZE = 40;
/** A generation that grew past this is cut back when the next one starts. */
const SHRINK_ABOVE = 8 << 20;

export class UndoLog {
  private file: StoreFile | null = null;
  /** Where the next record goes; 0 = no header written for this transaction yet. */
  private offset = 0;
  private salt = 0n;
  private shrink = false;

  constructor(
    private readonly sys: StoreFS,
    readonly path: string,
  ) {}

  /** A new transaction starts: its first record rewrites the header. */
  reset(): void {
    if (this.offset > SHRINK_ABOVE) this.shrink = true;
    this.offset = 0;
  }

  /** Saves the committed content of `pgno` before it is overwritten. */
  async save(base: Pos, pageSize: number, pgno: number, page: Uint8Array): Promise<void> {
    this.file ??= await this.sys.open(this.path, 'create');
    const file = this.file!;
    if (this.offset === 0) {
      if (this.shrink) {
        await file.truncate(0);
        this.shrink = false;
      }
      this.salt = randomBytes(8).readBigUInt64BE();
      const h = Buffer.alloc(UNDO_HEADER_SIZE);
      h.writeUInt32BE(MAGIC, 0);
      h.writeUInt32BE(VERSION, 4);
      h.writeUInt32BE(pageSize, 8);
      h.writeBigUInt64BE(this.salt, 16);
      h.writeBigUInt64BE(base.txid, 24);
      h.writeBigUInt64BE(base.postApplyChecksum, 32);
      await file.write(h, 0);
      this.offset = UNDO_HEADER_SIZE;
    }
    const rec = Buffer.allocUnsafe(pageSize + 12);
    rec.writeUInt32BE(pgno, 0);
    rec.set(page, 4);
    rec.writeBigUInt64BE(checksumPage(pgno, page) ^ this.salt, pageSize + 4);
    await file.write(rec, this.offset);
    this.offset += rec.length;
  }

  async close(): Promise<void> {
    await this.file?.close();
    this.file = null;
    this.offset = 0;
  }
}

/**
 * Writes the undo log's pages back into `dbPath` when the log was written
 * for a transaction that started at `pos` (the position recovery has
 * settled on). Stops at the first torn or inconsistent record. Returns the
 * number of pages restored (the first record of each page wins: it holds
 * the committed bytes).
 */
export async function restoreUndoLog(sys: StoreFS, undoPath: string, dbPath: string, pos: Pos): Promise<number> {
  const log = await sys.open(undoPath, 'r');
  if (log === null) return 0;
  let restored = 0;
  try {
    const h = await log.read(UNDO_HEADER_SIZE, 0);
    if (h.length < UNDO_HEADER_SIZE) return 0;
    if (h.readUInt32BE(0) !== MAGIC || h.readUInt32BE(4) !== VERSION) return 0;
    if (h.readBigUInt64BE(24) !== pos.txid || h.readBigUInt64BE(32) !== pos.postApplyChecksum) return 0;
    const pageSize = h.readUInt32BE(8);
    const salt = h.readBigUInt64BE(16);
    const seen = new Set<number>();
    const db = await sys.open(dbPath, 'rw');
    if (db === null) return 0;
    try {
      for (let off = UNDO_HEADER_SIZE; ; off += pageSize + 12) {
        const rec = await log.read(pageSize + 12, off);
        if (rec.length < pageSize + 12) break;
        const pgno = rec.readUInt32BE(0);
        const page = rec.subarray(4, 4 + pageSize);
        if (pgno === 0 || (checksumPage(pgno, page) ^ salt) !== rec.readBigUInt64BE(pageSize + 4)) break;
        if (seen.has(pgno)) continue;
        seen.add(pgno);
        await db.write(page, (pgno - 1) * pageSize);
        restored++;
      }
      if (restored > 0) await db.sync();
    } finally {
      await db.close();
    }
  } finally {
    await log.close();
  }
  return restored;
}

/** Removes the undo log (startup, once recovery no longer needs it). */
export async function removeUndoLog(sys: StoreFS, undoPath: string): Promise<void> {
  await sys.unlink(undoPath);
}
