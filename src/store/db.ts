import type { Stats } from 'node:fs';
import { mkdir, rm, unlink } from 'node:fs/promises';
import { isErrno, Mutex, type Logger } from '../internal/index.js';
import {
  CHECKSUM_FLAG,
  checksumPage,
  computePageChecksums,
  encodeLtxToBuffer,
  formatChecksum,
  formatTXID,
  HEADER_FLAG_COMPRESS_LZ4,
  isSnapshot,
  lockPgno,
  LtxDecoder,
  newHeader,
  syncDir,
  writeLtxFile,
  type Header,
  type Page,
  type Pos,
  type Trailer,
} from '../ltx/index.js';
import { DataFile } from './db-file.js';
import { durableWriter } from './durable-writer.js';
import { DatabaseLockTable } from './db-locks.js';
import { StoreError } from './errors.js';
import { isHotJournalHeader, rollbackJournalFile } from './journal.js';
import type { StoreLayout } from './layout.js';
import { PageChecksums } from './page-checksums.js';
import { UndoLog, restoreUndoLog } from './undo.js';
import { DBStats } from './db-stats.js';
import { isValidPageSize } from './sqlite-header.js';

/** How SQLite finalized a rollback journal: the three commit points. */
export type JournalMode = 'delete' | 'truncate' | 'persist';

/** A byte range of the database file whose kernel-cached pages are stale. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Hooks the filesystem layer installs so the store can tell the kernel
 * about changes it did not see go by (replica applies, recovery, deletes).
 */
export interface CacheInvalidator {
  /**
   * Stale cached pages of the database file. Resolves once the kernel has
   * dropped them: an apply keeps readers locked out until then.
   */
  databaseChanged(db: string, ranges: readonly ByteRange[] | 'all'): Promise<void>;
  /** `-pos` content changed. */
  positionChanged(db: string): void;
  /** Files of this database appeared or disappeared behind the kernel's back. */
  entriesChanged(db: string): void;
}

export type DBChangeKind = 'commit' | 'apply' | 'drop';

export interface DBChange {
  kind: DBChangeKind;
  db: string;
  pos: Pos;
  pageSize: number;
  commit: number;
  /** LTX timestamp, ms since the epoch. */
  timestamp: number;
  ltxPath: string;
}

export interface ApplyOptions {
  /**
   * Require a non-snapshot file to follow on from the current position
   * (default true); recovery's re-apply of the newest file turns it off
   * because the database is then between that file's pre- and post-apply
   * states.
   */
  expectPrevious?: boolean;
  kind?: DBChangeKind;
}

export interface DBOptions {
  name: string;
  layout: StoreLayout;
  nodeID: bigint;
  compress: boolean;
  logger: Logger;
  /** True while this node may accept writes (it is the primary). */
  writeable: () => boolean;
  onChange: (change: DBChange) => void;
}

const ZERO_POS: Pos = { txid: 0n, postApplyChecksum: 0n };
/** Largest read when copying pages into an LTX file. */
const READ_CHUNK = 1 << 20;
/** Commits up to this size are encoded in memory and written by the durable-writer thread. */
const SMALL_COMMIT_BYTES = 4 << 20;
/** Largest write when applying consecutive pages of an LTX file. */
const APPLY_BATCH_BYTES = 1 << 20;

/**
 * One replicated database: its files, page checksums, position and locks.
 *
 * Every mutation of the database file goes through this class so the
 * per-page checksums always describe the bytes on disk, and a commit or an
 * apply costs O(pages touched). Mutations are serialized by `mutex`; reads
 * are not (SQLite's own locks, emulated in `locks`, keep readers away from
 * pages a writer is changing).
 */
export class DB {
  readonly name: string;
  readonly locks = new DatabaseLockTable();
  /** Counters for /metrics (plain numbers, cheap on the write path). */
  readonly stats = new DBStats();
  private readonly opts: DBOptions;
  private readonly log: Logger;
  private readonly mutex = new Mutex();

  private dbFile: DataFile | null = null;
  private journalFile: DataFile | null = null;
  /**
   * The real journal file, emptied, after SQLite deleted `<name>-journal`
   * (DELETE mode): the next transaction reuses it, which spares a create,
   * a close and an unlink (about 0.5 ms) per commit. Invisible in the mount.
   */
  private spareJournal: DataFile | null = null;
  private sums: PageChecksums | null = null;
  /**
   * Pages written since the last commit, each with its checksum as of that
   * commit: a page written back unchanged (a rollback restoring it, SQLite
   * rewriting identical bytes) is left out of the next LTX file.
   */
  private readonly dirty = new Map<number, bigint>();

  private _pageSize = 0;
  private _pageN = 0;
  private _pos: Pos = ZERO_POS;
  private _timestamp = 0;
  private warnedNoJournal = false;
  /** Whether the journal file begins with its magic; null: not known, read it. */
  private journalHot: boolean | null = null;
  /** Committed bytes of the pages the current transaction overwrites (undo.ts). */
  private readonly undo: UndoLog;

  invalidator: CacheInvalidator | null = null;

  constructor(opts: DBOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.log = opts.logger.child({ db: opts.name });
    this.undo = new UndoLog(opts.layout.undoPath(opts.name));
  }

  get pageSize(): number {
    return this._pageSize;
  }

  /** Database size in pages as of the last commit or apply (0: empty or deleted). */
  get pageN(): number {
    return this._pageN;
  }

  get pos(): Pos {
    return this._pos;
  }

  /** Timestamp (ms) of the newest LTX file, for the `-pos` file's mtime. */
  get timestamp(): number {
    return this._timestamp;
  }

  get databasePath(): string {
    return this.opts.layout.databasePath(this.name);
  }

  get ltxDir(): string {
    return this.opts.layout.ltxDir(this.name);
  }

  /** Whether this database's new LTX files are LZ4-compressed (data.compress). */
  get compress(): boolean {
    return this.opts.compress;
  }

  /** The database file exists (it may still be empty). */
  get exists(): boolean {
    return this.dbFile !== null;
  }

  get journalExists(): boolean {
    return this.journalFile !== null;
  }

  // ---------------------------------------------------------------- opening

  /** Opens the files that exist. Recovery (recovery.ts) runs right after. */
  async openFiles(): Promise<void> {
    await mkdir(this.ltxDir, { recursive: true });
    this.dbFile = await DataFile.open(this.databasePath, false);
    this.journalFile = await DataFile.open(this.opts.layout.journalPath(this.name), false);
  }

  /** Creates the database file (a client created `<name>` on the primary). */
  async create(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      await mkdir(this.ltxDir, { recursive: true });
      if (this.dbFile === null) this.dbFile = await DataFile.open(this.databasePath, true);
    });
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      await this.dbFile?.close();
      await this.journalFile?.close();
      await this.spareJournal?.close();
      await this.undo.close();
      this.dbFile = null;
      this.journalFile = null;
      this.spareJournal = null;
    });
  }

  /** Sets page size, page count, checksums and position after recovery. */
  setRecovered(state: { pageSize: number; pageN: number; pos: Pos; timestamp: number; sums: PageChecksums | null }): void {
    this._pageSize = state.pageSize;
    this._pageN = state.pageN;
    this._pos = state.pos;
    this._timestamp = state.timestamp;
    this.sums = state.sums;
  }

  /** Reads every page checksum from the database file (startup, after a rollback). */
  async loadChecksums(pageSize: number, pageCount: number): Promise<PageChecksums> {
    const sums = new PageChecksums(lockPgno(pageSize));
    if (this.dbFile === null || pageCount === 0) return sums;
    const all = await computePageChecksums(this.databasePath, pageSize, pageCount);
    for (let i = 0; i < pageCount; i++) {
      const c = all[i]!;
      if (c !== 0n) sums.set(i + 1, c);
    }
    return sums;
  }

  // ------------------------------------------------------ database file I/O

  async databaseSize(): Promise<number> {
    return this.dbFile === null ? 0 : this.dbFile.size();
  }

  async statDatabase(): Promise<Stats | null> {
    return this.dbFile === null ? null : this.dbFile.stat();
  }

  async readDatabase(length: number, offset: number): Promise<Buffer> {
    if (this.dbFile === null) throw notFound(this.name);
    return this.dbFile.read(length, offset);
  }

  /**
   * A write from a SQLite client on the primary. SQLite writes whole pages
   * at page boundaries; anything else is refused rather than half-tracked.
   */
  async writeDatabase(offset: number, data: Uint8Array): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.requireDatabaseFile();
      if (offset === 0 && data.length >= 100) this.checkHeaderWrite(data);
      const ps = this._pageSize;
      if (ps === 0) {
        throw new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: page size unknown for a write at offset ${offset}`);
      }
      if (offset % ps !== 0 || data.length === 0 || data.length % ps !== 0) {
        throw new StoreError(
          'ERR_STORE_INVALID_WRITE',
          `${this.name}: database writes must be whole ${ps}-byte pages at page boundaries (got ${data.length} bytes at offset ${offset})`,
        );
      }
      await this.requireHotJournal(`a ${data.length}-byte write at offset ${offset}`);
      const sums = this.checksums();
      const first = offset / ps + 1;
      if (this.dirty.size === 0) this.undo.reset();
      for (let i = 0; i < data.length / ps; i++) {
        const pgno = first + i;
        if (!this.dirty.has(pgno) && pgno <= this._pageN) await this.saveUndo(file, pgno, sums.get(pgno));
      }
      await file.write(data, offset);
      this.stats.databaseWrites++;
      for (let i = 0; i < data.length / ps; i++) {
        const pgno = first + i;
        if (!this.dirty.has(pgno)) this.dirty.set(pgno, sums.get(pgno));
        sums.set(pgno, checksumPage(pgno, data.subarray(i * ps, (i + 1) * ps)));
      }
    });
  }

  /** SQLite shrinking the file (VACUUM, auto-vacuum) before its commit. */
  async truncateDatabase(size: number): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.requireDatabaseFile();
      const ps = this._pageSize;
      if (ps === 0 ? size !== 0 : size % ps !== 0) {
        throw new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: database size ${size} is not a multiple of the page size ${ps}`);
      }
      if (!(await this.isJournalHot())) {
        // VACUUM cuts the pages past the new end after it has finalized the
        // journal: allowed when the file shrinks to exactly the page count
        // in its header (the committed image), refused otherwise.
        const hdr = await file.read(100, 0);
        const count = hdr.length >= 100 ? hdr.readUInt32BE(28) : 0;
        if (ps === 0 || size !== count * ps || size > (await file.size())) this.refuseUnjournaled(`resizing to ${size} bytes`);
      }
      await file.truncate(size);
      if (ps !== 0) this.checksums().truncate(size / ps);
    });
  }

  async syncDatabase(dataOnly: boolean): Promise<void> {
    await this.dbFile?.sync(dataOnly);
  }

  /** Page 1 carries the page size and the journal mode; refuse changes we cannot replicate. */
  private checkHeaderWrite(page1: Uint8Array): void {
    const raw = (page1[16]! << 8) | page1[17]!;
    const ps = raw === 1 ? 65536 : raw;
    if (!isValidPageSize(ps)) {
      throw new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: page 1 declares an invalid page size ${raw}`);
    }
    if (page1[18] === 2 || page1[19] === 2) {
      this.log.error('refusing to switch the database to WAL mode: WAL is not supported yet');
      throw new StoreError('ERR_STORE_UNSUPPORTED', `${this.name}: WAL journal mode is not supported yet`);
    }
    if (this._pageSize === 0) {
      this._pageSize = ps;
    } else if (ps !== this._pageSize) {
      if (this._pos.txid === 0n && this._pageN === 0) {
        this._pageSize = ps;
        this.sums = null;
      } else {
        this.log.error({ from: this._pageSize, to: ps }, 'refusing to change the page size of a replicated database');
        throw new StoreError(
          'ERR_STORE_UNSUPPORTED',
          `${this.name}: changing the page size from ${this._pageSize} to ${ps} is not supported`,
        );
      }
    }
  }

  // ------------------------------------------------------------ the journal

  /** A client created `<name>-journal` (SQLite opening a write transaction). */
  async createJournal(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      this.requireDatabaseFile();
      if (this.journalFile === null) {
        const spare = this.spareJournal;
        this.spareJournal = null;
        this.journalFile = spare ?? (await DataFile.open(this.opts.layout.journalPath(this.name), true));
        this.journalHot = null;
      }
    });
  }

  async journalSize(): Promise<number> {
    return this.journalFile === null ? 0 : this.journalFile.size();
  }

  async statJournal(): Promise<Stats | null> {
    return this.journalFile === null ? null : this.journalFile.stat();
  }

  async readJournal(length: number, offset: number): Promise<Buffer> {
    if (this.journalFile === null) throw notFound(`${this.name}-journal`);
    return this.journalFile.read(length, offset);
  }

  /**
   * A journal write. In PERSIST mode SQLite commits by overwriting the first
   * 28 header bytes with zeros; that write is the commit point, so the LTX
   * file is made durable before the header is zeroed.
   */
  async writeJournal(offset: number, data: Uint8Array): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.requireJournalFile();
      if (offset === 0 && data.length === 28 && data.every((b) => b === 0)) {
        await this.commitJournal('persist');
      } else if (offset === 0 && data.length >= 28 && this._pageSize === 0) {
        // The journal header names the page size; a brand-new database may
        // not have written page 1 yet.
        const ps = Buffer.from(data.buffer, data.byteOffset, data.length).readUInt32BE(24);
        if (isValidPageSize(ps)) this._pageSize = ps;
      }
      await file.write(data, offset);
      this.stats.journalWrites++;
      if (offset < 8) this.journalHot = null;
    });
  }

  /** TRUNCATE mode's commit point is the journal's truncation to zero. */
  async truncateJournal(size: number): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.requireJournalFile();
      if (size !== 0) {
        // PERSIST mode with journal_size_limit trims the journal after
        // zeroing its header (the commit point, already handled): a
        // finalized journal may shrink. Anything else would cut records
        // out of a live journal.
        const head = await file.read(28, 0);
        if (head.length === 28 && head.every((b) => b === 0) && size >= 28 && size < (await file.size())) {
          await file.truncate(size);
          this.journalHot = null;
          return;
        }
        throw new StoreError(
          'ERR_STORE_INVALID_WRITE',
          `${this.name}: the journal can only be truncated to 0 bytes, or shrunk after its header was zeroed (asked for ${size})`,
        );
      }
      await this.commitJournal('truncate');
      await file.truncate(0);
      this.journalHot = null;
    });
  }

  async syncJournal(dataOnly: boolean): Promise<void> {
    await this.journalFile?.sync(dataOnly);
  }

  /** DELETE mode's commit point is the journal's removal. */
  async removeJournal(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      this.requireJournalFile();
      await this.commitJournal('delete');
      await this.retireJournalFile();
    });
  }

  /**
   * Empties the journal instead of removing it, and keeps it for the next
   * transaction. On disk an empty journal is not hot, like a missing one;
   * if a crash keeps the old bytes instead, startup recovery rolls them
   * back and re-applies the LTX file, as after any crash between the LTX
   * file and the journal's finalization.
   */
  private async retireJournalFile(): Promise<void> {
    const file = this.journalFile;
    this.journalFile = null;
    this.journalHot = null;
    if (file === null) return;
    try {
      await file.truncate(0);
    } catch (err) {
      await file.close().catch(() => {});
      await unlink(this.opts.layout.journalPath(this.name)).catch(() => {});
      throw err;
    }
    this.spareJournal = file;
  }

  private async deleteJournalFile(): Promise<void> {
    const file = this.journalFile;
    const spare = this.spareJournal;
    this.journalFile = null;
    this.spareJournal = null;
    this.journalHot = null;
    await file?.close();
    await spare?.close();
    await unlink(this.opts.layout.journalPath(this.name)).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
  }

  /**
   * Turns the transaction SQLite is finalizing into an LTX file, durably,
   * before the journal is finalized. Returns false when there is nothing to
   * record: the journal was never synced (SQLite had not touched the
   * database yet), or the database is back where it started (a rollback
   * that replayed the journal).
   */
  private async commitJournal(mode: JournalMode): Promise<boolean> {
    const journal = this.requireJournalFile();
    const head = await journal.read(8, 0);
    if (!isHotJournalHeader(head) || this._pageSize === 0) {
      if (this.dirty.size > 0) this.log.warn({ mode, pages: this.dirty.size }, 'journal finalized without its magic after database writes');
      this.dirty.clear();
      return false;
    }
    const db = this.requireDatabaseFile();
    const hdr = await db.read(100, 0);
    if (hdr.length === 0 && this._pos.txid === 0n) {
      // The first transaction of a new database rolled back after its
      // journal was synced: SQLite truncated the file back to nothing.
      this.dirty.clear();
      this.log.debug({ mode }, 'first transaction rolled back; no LTX file');
      return false;
    }
    if (hdr.length < 100) {
      throw new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: database is ${hdr.length} bytes at commit; no SQLite header`);
    }
    const commit = hdr.readUInt32BE(28);
    const postApply = await this.checksumAt(commit);
    if (this._pos.txid > 0n && commit === this._pageN && postApply === this._pos.postApplyChecksum) {
      this.dirty.clear();
      this.log.debug({ mode }, 'transaction left the database unchanged (rolled back); no LTX file');
      return false;
    }
    const txid = this._pos.txid + 1n;
    const lock = lockPgno(this._pageSize);
    let pgnos: number[];
    if (txid === 1n) {
      pgnos = [];
      for (let p = 1; p <= commit; p++) if (p !== lock) pgnos.push(p);
    } else {
      // checksumAt() filled every page up to commit, so an unchanged
      // checksum means the committed bytes are still there.
      const sums = this.checksums();
      pgnos = [...this.dirty]
        .filter(([p, committed]) => p <= commit && p !== lock && sums.get(p) !== committed)
        .map(([p]) => p)
        .sort((a, b) => a - b);
    }
    const header = newHeader({
      flags: this.opts.compress ? HEADER_FLAG_COMPRESS_LZ4 : 0,
      pageSize: this._pageSize,
      commit,
      minTXID: txid,
      maxTXID: txid,
      timestamp: BigInt(Date.now()),
      preApplyChecksum: txid === 1n ? 0n : this._pos.postApplyChecksum,
      nodeID: this.opts.nodeID,
    });
    const path = this.opts.layout.ltxPath(this.name, txid, txid);
    await this.writeCommitFile(path, header, pgnos, postApply);
    this.dirty.clear();
    this.stats.commits++;
    this.advance('commit', header, postApply, path);
    this.log.debug({ txid: formatTXID(txid), pages: pgnos.length, mode }, 'committed');
    return true;
  }

  /**
   * Makes a commit's LTX file durable. A typical transaction touches a few
   * pages: it is encoded in memory and handed whole to the durable-writer
   * thread (one hop instead of a pool round trip per file operation). Big
   * ones (imports, bulk loads) stream through the encoder in bounded memory.
   */
  private async writeCommitFile(path: string, header: Header, pgnos: readonly number[], postApply: bigint): Promise<void> {
    if (pgnos.length * this._pageSize > SMALL_COMMIT_BYTES) {
      await writeLtxFile(path, header, this.readPages(pgnos), postApply);
      return;
    }
    const pages: Page[] = [];
    for await (const p of this.readPages(pgnos)) pages.push({ pgno: p.pgno, data: Buffer.from(p.data) });
    await durableWriter.write(path, encodeLtxToBuffer(header, pages, postApply));
  }

  /** The database checksum for `pageCount` pages, after forgetting pages past it. */
  private async checksumAt(pageCount: number): Promise<bigint> {
    const sums = this.checksums();
    sums.truncate(pageCount);
    const missing = sums.missing(pageCount);
    if (missing.length > 0) {
      // Pages SQLite never wrote through us (a file that predates the store
      // or grew oddly): take them from disk rather than publish a wrong sum.
      for (const p of missing) {
        const data = await this.requireDatabaseFile().read(this._pageSize, (p - 1) * this._pageSize);
        if (data.length !== this._pageSize) {
          throw new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: page ${p} is beyond the end of the database file`);
        }
        sums.set(p, checksumPage(p, data));
      }
    }
    return sums.checksum(pageCount);
  }

  /** Pages read back from the database file, contiguous runs in large reads. */
  async *readPages(pgnos: readonly number[]): AsyncGenerator<Page> {
    const ps = this._pageSize;
    const file = this.requireDatabaseFile();
    const perRead = Math.max(1, Math.floor(READ_CHUNK / ps));
    const buf = Buffer.allocUnsafe(perRead * ps);
    let i = 0;
    while (i < pgnos.length) {
      let j = i + 1;
      while (j < pgnos.length && j - i < perRead && pgnos[j] === pgnos[j - 1]! + 1) j++;
      const n = j - i;
      const got = await file.read(n * ps, (pgnos[i]! - 1) * ps, buf.subarray(0, n * ps));
      if (got.length !== n * ps) {
        throw new StoreError(
          'ERR_STORE_INVALID_WRITE',
          `${this.name}: page ${pgnos[i]! + Math.floor(got.length / ps)} is beyond the end of the database file`,
        );
      }
      for (let k = 0; k < n; k++) yield { pgno: pgnos[i + k]!, data: got.subarray(k * ps, (k + 1) * ps) };
      i = j;
    }
  }

  private advance(kind: DBChangeKind, header: Header, postApply: bigint, ltxPath: string): void {
    this._pos = { txid: header.maxTXID, postApplyChecksum: postApply };
    this._pageN = header.commit;
    this._timestamp = Number(header.timestamp);
    this.invalidator?.positionChanged(this.name);
    this.opts.onChange({
      kind,
      db: this.name,
      pos: this._pos,
      pageSize: header.pageSize,
      commit: header.commit,
      timestamp: this._timestamp,
      ltxPath,
    });
  }

  // ---------------------------------------------------------------- deletion

  /**
   * `unlink <name>` on the primary: a soft delete recorded as an LTX file
   * with commit 0 (LiteFS ≥ 0.5.5), so replicas drop the database too.
   */
  async drop(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      if (this.dbFile === null) throw notFound(this.name);
      if (this._pos.txid > 0n) {
        const txid = this._pos.txid + 1n;
        const header = newHeader({
          flags: this.opts.compress ? HEADER_FLAG_COMPRESS_LZ4 : 0,
          pageSize: this._pageSize,
          commit: 0,
          minTXID: txid,
          maxTXID: txid,
          timestamp: BigInt(Date.now()),
          preApplyChecksum: this._pos.postApplyChecksum,
          nodeID: this.opts.nodeID,
        });
        const path = this.opts.layout.ltxPath(this.name, txid, txid);
        await writeLtxFile(path, header, [], CHECKSUM_FLAG);
        await this.removeDataFiles();
        this.stats.commits++;
        this.advance('drop', header, CHECKSUM_FLAG, path);
      } else {
        await this.removeDataFiles();
      }
    });
  }

  private async removeDataFiles(): Promise<void> {
    await this.deleteJournalFile();
    const file = this.dbFile;
    this.dbFile = null;
    await file?.close();
    await rm(this.databasePath, { force: true });
    this.sums?.clear();
    this.dirty.clear();
    this.invalidator?.entriesChanged(this.name);
  }

  // ------------------------------------------------------------- applying LTX

  /**
   * Applies an LTX file to the database file: pages written through the
   * checksum-tracking path, file truncated to the new size, the result
   * checked against the file's post-apply checksum. The caller holds the
   * internal write lock (no SQLite client is reading) and has already
   * verified the file end to end, so a failure here means the disk changed
   * under us.
   *
   * `expectPrevious` (default true) requires a non-snapshot file to follow on
   * from the current position; recovery's re-apply of the newest file turns
   * it off because the database is then between that file's pre- and
   * post-apply states.
   */
  async applyLtx(path: string, opts: ApplyOptions = {}): Promise<Header> {
    return this.mutex.run(async () => {
      const dec = new LtxDecoder(path, { strict: true });
      try {
        const header = await dec.decodeHeader();
        const pages = async function* (): AsyncGenerator<Page> {
          for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) yield p;
        };
        await this.applyPages(header, pages(), () => dec.close(), path, opts);
        return header;
      } finally {
        await dec.destroy();
      }
    });
  }

  /**
   * Applies an LTX file whose pages were already decoded and verified (a
   * replica keeps an incremental's pages from the pass that checked it).
   */
  async applyDecoded(header: Header, trailer: Trailer, pages: readonly Page[], path: string, opts: ApplyOptions = {}): Promise<void> {
    await this.mutex.run(() => this.applyPages(header, pages, () => Promise.resolve(trailer), path, opts));
  }

  private async applyPages(
    header: Header,
    pages: AsyncIterable<Page> | Iterable<Page>,
    trailerOf: () => Promise<Trailer>,
    path: string,
    opts: ApplyOptions,
  ): Promise<void> {
    const snapshot = isSnapshot(header);
    if (!snapshot && (opts.expectPrevious ?? true)) {
      if (header.minTXID !== this._pos.txid + 1n || header.preApplyChecksum !== this._pos.postApplyChecksum) {
        throw new StoreError(
          'ERR_STORE_POSITION_MISMATCH',
          `${this.name}: LTX ${formatTXID(header.minTXID)}-${formatTXID(header.maxTXID)} (pre-apply ${formatChecksum(header.preApplyChecksum)}) does not follow position ${formatTXID(this._pos.txid)}/${formatChecksum(this._pos.postApplyChecksum)}`,
        );
      }
    }
    if (header.commit > 0 && this._pageSize !== 0 && header.pageSize !== this._pageSize && this._pageN > 0 && !snapshot) {
      throw new StoreError(
        'ERR_STORE_POSITION_MISMATCH',
        `${this.name}: LTX page size ${header.pageSize} differs from the database's ${this._pageSize}`,
      );
    }
    if (header.commit === 0) {
      await trailerOf();
      await this.removeDataFiles();
      this._pageSize = header.pageSize;
      this.advance('drop', header, CHECKSUM_FLAG, path);
      return;
    }
    if (this._pageSize !== header.pageSize) {
      this._pageSize = header.pageSize;
      this.sums = null;
    }
    const created = this.dbFile === null;
    if (created) this.dbFile = await DataFile.open(this.databasePath, true);
    const file = this.requireDatabaseFile();
    const sums = this.checksums();
    const ps = header.pageSize;
    const ranges: ByteRange[] = [];
    // Runs of consecutive pages go to disk in large writes: one await per
    // 4 KiB page made a 256 MB snapshot take seconds of round trips.
    const batch = Buffer.allocUnsafe(Math.max(1, Math.floor(APPLY_BATCH_BYTES / ps)) * ps);
    let batchFirst = 0;
    let batchPages = 0;
    const flush = async (): Promise<void> => {
      if (batchPages === 0) return;
      await file.write(batch.subarray(0, batchPages * ps), (batchFirst - 1) * ps);
      batchPages = 0;
    };
    for await (const p of pages) {
      if (batchPages > 0 && (p.pgno !== batchFirst + batchPages || (batchPages + 1) * ps > batch.length)) await flush();
      if (batchPages === 0) batchFirst = p.pgno;
      batch.set(p.data, batchPages * ps);
      batchPages++;
      sums.set(p.pgno, checksumPage(p.pgno, p.data));
      const last = ranges[ranges.length - 1];
      const off = (p.pgno - 1) * ps;
      if (last !== undefined && last.offset + last.length === off) last.length += ps;
      else ranges.push({ offset: off, length: ps });
    }
    await flush();
    const trailer = await trailerOf();
    const size = await file.size();
    if (size > header.commit * ps) {
      await file.truncate(header.commit * ps);
      ranges.push({ offset: header.commit * ps, length: size - header.commit * ps });
    }
    sums.truncate(header.commit);
    const actual = await this.checksumAt(header.commit);
    if (actual !== trailer.postApplyChecksum) {
      throw new StoreError(
        'ERR_STORE_CHECKSUM_MISMATCH',
        `${this.name}: database checksum ${formatChecksum(actual)} after applying TXID ${formatTXID(header.maxTXID)} does not match its post-apply checksum ${formatChecksum(trailer.postApplyChecksum)}`,
      );
    }
    this.dirty.clear();
    await this.invalidator?.databaseChanged(this.name, snapshot ? 'all' : ranges);
    if (created) this.invalidator?.entriesChanged(this.name);
    this.advance(opts.kind ?? 'apply', header, trailer.postApplyChecksum, path);
  }

  /**
   * Forgets the position so the next stream connection asks the primary for
   * a snapshot: used when an apply failed after pages were written, which
   * leaves the file matching no position.
   */
  resetPosition(): void {
    this._pos = ZERO_POS;
    this.invalidator?.positionChanged(this.name);
  }

  /** Flushes the database file and the LTX directory to disk (after applying). */
  async syncAll(): Promise<void> {
    await this.dbFile?.sync();
    await syncDir(this.ltxDir);
  }

  // ----------------------------------------------------------------- helpers

  /** Page checksums, created on first use once the page size is known. */
  private checksums(): PageChecksums {
    if (this.sums === null) this.sums = new PageChecksums(lockPgno(this._pageSize));
    return this.sums;
  }

  /** The current checksum of the first `pageCount` pages (tests, strict verification). */
  async currentChecksum(pageCount = this._pageN): Promise<bigint> {
    return this.mutex.run(() => this.checksumAt(pageCount));
  }

  /**
   * SQLite changes the database file only after it has synced a rollback
   * journal that starts with the magic (with synchronous=OFF it writes the
   * magic at once), and only until it finalizes that journal. A write or
   * resize at any other time (journal_mode OFF or MEMORY, a client writing
   * the file directly) has no commit point we could observe: accepting it
   * would leave the file different from its last LTX file forever.
   */
  private async requireHotJournal(what: string): Promise<void> {
    if (!(await this.isJournalHot())) this.refuseUnjournaled(what);
  }

  private async isJournalHot(): Promise<boolean> {
    if (this.journalFile !== null && this.journalHot === null) {
      this.journalHot = isHotJournalHeader(await this.journalFile.read(8, 0));
    }
    return this.journalFile !== null && this.journalHot === true;
  }

  private refuseUnjournaled(what: string): never {
    if (!this.warnedNoJournal) {
      this.warnedNoJournal = true;
      this.log.error(
        { what },
        'refusing a database change outside a journaled transaction: journal_mode OFF and MEMORY, and writing the file directly, are not supported',
      );
    }
    throw new StoreError(
      'ERR_STORE_UNSUPPORTED',
      `${this.name}: ${what} outside a journaled transaction (no synced rollback journal); journal_mode OFF and MEMORY are not supported`,
    );
  }

  /**
   * Keeps the committed bytes of a page before the transaction first
   * overwrites it, so that recovery after a crash can restore the pages
   * SQLite's journal does not hold (reused free pages) byte for byte.
   */
  private async saveUndo(file: DataFile, pgno: number, committed: bigint): Promise<void> {
    const ps = this._pageSize;
    if (committed === 0n) return;
    const old = await file.read(ps, (pgno - 1) * ps);
    // Only bytes that are provably the committed page are worth keeping.
    if (old.length !== ps || checksumPage(pgno, old) !== committed) return;
    await this.undo.save(this._pos, ps, pgno, old);
  }

  /**
   * Restores the pages of an interrupted transaction SQLite did not
   * journal (startup recovery, after the journal was rolled back). Only a
   * log written from position `pos` is used. Returns the pages restored.
   */
  async restoreUndo(pos: Pos): Promise<number> {
    return restoreUndoLog(this.opts.layout.undoPath(this.name), this.databasePath, pos);
  }

  private requireWriteable(): void {
    if (!this.opts.writeable()) {
      throw new StoreError('ERR_STORE_READONLY', `${this.name}: this node is a read-only replica; write on the primary`);
    }
  }

  private requireDatabaseFile(): DataFile {
    if (this.dbFile === null) throw notFound(this.name);
    return this.dbFile;
  }

  private requireJournalFile(): DataFile {
    if (this.journalFile === null) throw notFound(`${this.name}-journal`);
    return this.journalFile;
  }

  /** For recovery: direct access to the files without the mutation rules. */
  get files(): { db: DataFile | null; journal: DataFile | null } {
    return { db: this.dbFile, journal: this.journalFile };
  }

  /**
   * Rolls back a journal left by a transaction that could not commit (this
   * node stopped being primary under a writer): the database returns to
   * its last committed state and the checksums are recomputed from disk.
   * The caller holds the write lock. Returns whether anything was undone.
   */
  async rollbackLeftoverJournal(): Promise<boolean> {
    return this.mutex.run(async () => {
      if (this.journalFile === null) return false;
      const result = await rollbackJournalFile(this.databasePath, this.opts.layout.journalPath(this.name));
      await this.restoreUndo(this._pos);
      this.undo.reset();
      await this.deleteJournalFile();
      this.dirty.clear();
      if (this._pageSize !== 0 && this.dbFile !== null) {
        const head = await this.dbFile.read(100, 0);
        const pageCount = head.length >= 100 ? head.readUInt32BE(28) : 0;
        this.sums = await this.loadChecksums(this._pageSize, pageCount);
        await this.invalidator?.databaseChanged(this.name, 'all');
      }
      this.invalidator?.entriesChanged(this.name);
      return result.hot;
    });
  }

  /** For recovery: after rolling back and deleting the journal. */
  async forgetJournal(): Promise<void> {
    await this.deleteJournalFile();
  }
}

function notFound(name: string): StoreError {
  return new StoreError('ERR_STORE_DB_NOT_FOUND', `${name}: no such file`);
}
