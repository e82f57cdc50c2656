import type { Stats } from 'node:fs';
import { Mutex, type Logger } from '../internal/index.js';
import {
  CHECKSUM_FLAG,
  HEADER_FLAG_COMPRESS_LZ4,
  LtxDecoder,
  checksumPage,
  computePageChecksums,
  formatChecksum,
  formatTXID,
  isSnapshot,
  lockPgno,
  newHeader,
  type Header,
  type Page,
  type Pos,
  type Trailer,
} from '../ltx/index.js';
import type { ClientLocks, JournalKind } from './client-locks.js';
import { DBStats } from './db-stats.js';
import { StoreError } from './errors.js';
import { rollbackJournalFile } from './journal.js';
import type { StoreLayout } from './layout.js';
import { fileChunks, writeLtxDurably } from './ltx-io.js';
import { PageChecksums } from './page-checksums.js';
import { RollbackJournal } from './rollback-journal.js';
import { encodeShmHeader, parseShmHeader, SHM_HEADER_SIZE } from './shm-format.js';
import { SnapshotView } from './snapshot-view.js';
import { isValidPageSize } from './sqlite-header.js';
import type { StoreFile, StoreFS } from './sys.js';
import { UndoLog, restoreUndoLog } from './undo.js';
import { WalLog, type WalTransaction } from './wal.js';
import { WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE, parseWalHeader } from './wal-format.js';

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
  /**
   * Files of this database appeared or disappeared behind the kernel's
   * back. Resolves once the kernel has dropped its cached names (callers
   * that are not serving a request in the mount may wait for that).
   */
  entriesChanged(db: string): Promise<void>;
  /** The `-wal` file changed behind the kernel's back (emptied by the store). */
  walChanged(db: string): void;
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
  /** Longest wait for SQLite clients to leave the database (default 30 s). */
  lockTimeoutMs?: number;
  /** The caller already keeps SQLite clients out (runExclusive). */
  clientsLocked?: boolean;
}

export interface DBOptions {
  name: string;
  layout: StoreLayout;
  sys: StoreFS;
  nodeID: bigint;
  compress: boolean;
  logger: Logger;
  /** True while this node may accept writes (it is the primary). */
  writeable: () => boolean;
  onChange: (change: DBChange) => void;
  /** The locks SQLite clients take, as the store can take them (the mount's, once it is up). */
  clientLocks: () => ClientLocks;
}

const ZERO_POS: Pos = { txid: 0n, postApplyChecksum: 0n };
const LOW63 = CHECKSUM_FLAG - 1n;
/** Largest read when copying pages into an LTX file. */
const READ_CHUNK = 1 << 20;
/** Largest write when applying consecutive pages of an LTX file. */
const APPLY_BATCH_BYTES = 1 << 20;
/** How long an apply, import or rollback waits for SQLite clients by default. */
const CLIENT_LOCK_TIMEOUT_MS = 30_000;
/** What a snapshot view may keep of pages changed under it before it gives up. */
const VIEW_MAX_KEPT_BYTES = 256 << 20;

/**
 * One replicated database: its files, page checksums, position, and the
 * rules that turn what SQLite does to them into LTX files.
 *
 * Every mutation of the database file goes through this class so the
 * per-page checksums always describe the bytes on disk, and a commit or an
 * apply costs O(pages touched). Mutations are serialized by `mutex`; reads
 * are not (SQLite's own locks keep readers away from pages a writer is
 * changing, and snapshot views are handed any page before it changes).
 *
 * The position's checksum is the checksum of the database as of its last
 * transaction: in rollback-journal modes the database file itself at the
 * commit point; in WAL mode the database file with the committed WAL
 * frames laid over it.
 */
export class DB {
  readonly name: string;
  /** Counters for /metrics (plain numbers, cheap on the write path). */
  readonly stats = new DBStats();
  private readonly opts: DBOptions;
  private readonly sys: StoreFS;
  private readonly log: Logger;
  private readonly mutex = new Mutex();
  /** Serializes the store's own exclusive work on this database (apply, import, rollback). */
  private readonly exclusiveWork = new Mutex();

  private dbFile: StoreFile | null = null;
  private readonly journal: RollbackJournal;
  private readonly wal: WalLog;
  private shmFile: StoreFile | null = null;
  /** Checksums of the pages in the database file (in WAL mode the committed WAL frames come on top). */
  private sums: PageChecksums | null = null;
  /**
   * Pages written since the last commit in a rollback-journal transaction,
   * each with its checksum as of that commit: a page written back unchanged
   * (a rollback restoring it) is left out of the next LTX file.
   */
  private readonly dirty = new Map<number, bigint>();
  private readonly views = new Set<SnapshotView>();

  private _pageSize = 0;
  private _pageN = 0;
  private _pos: Pos = ZERO_POS;
  private _timestamp = 0;
  /** The journal mode page 1 of the committed database names (bytes 18/19). */
  private _kind: JournalKind = 'rollback';
  /** The database left WAL mode: its empty `-wal` goes once nobody uses it (retireWalIfUnused). */
  private walToRetire = false;
  private warnedNoJournal = false;
  /** Committed bytes of the pages the current transaction overwrites (undo.ts). */
  private readonly undo: UndoLog;

  invalidator: CacheInvalidator | null = null;

  constructor(opts: DBOptions) {
    this.opts = opts;
    this.sys = opts.sys;
    this.name = opts.name;
    this.log = opts.logger.child({ db: opts.name });
    this.journal = new RollbackJournal(opts.sys, opts.layout.journalPath(opts.name), opts.name);
    this.wal = new WalLog(opts.name);
    this.undo = new UndoLog(opts.sys, opts.layout.undoPath(opts.name));
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

  /** Rollback journal or WAL, as page 1 of the committed database says. */
  get journalKind(): JournalKind {
    return this._kind;
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
    return this.journal.exists;
  }

  get walExists(): boolean {
    return this.wal.exists;
  }

  get shmExists(): boolean {
    return this.shmFile !== null;
  }

  /** Whether the database has been deleted (a commit-0 LTX file is its newest). */
  get deleted(): boolean {
    return this._pageN === 0 && this._pos.txid > 0n;
  }

  // ---------------------------------------------------------------- opening

  /** Opens the files that exist (recovery runs right after). A stale wal-index is removed: SQLite rebuilds it. */
  async openFiles(): Promise<void> {
    await this.sys.mkdirs(this.ltxDir);
    this.dbFile ??= await this.sys.open(this.databasePath, 'rw');
    await this.journal.open();
    if (!this.wal.exists) this.wal.attach(await this.sys.open(this.opts.layout.walPath(this.name), 'rw'));
    await this.sys.unlink(this.opts.layout.shmPath(this.name));
  }

  /** Creates the database file (a client created `<name>` on the primary). */
  async create(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      await this.sys.mkdirs(this.ltxDir);
      this.dbFile ??= await this.sys.open(this.databasePath, 'create');
    });
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      await this.dbFile?.close();
      await this.journal.close();
      await (await this.wal.detach(() => true))?.close();
      await this.shmFile?.close();
      await this.undo.close();
      this.dbFile = null;
      this.shmFile = null;
    });
  }

  /** Sets page size, page count, checksums and position after recovery. */
  setRecovered(state: {
    pageSize: number;
    pageN: number;
    pos: Pos;
    timestamp: number;
    sums: PageChecksums | null;
    kind: JournalKind;
  }): void {
    this._pageSize = state.pageSize;
    this._pageN = state.pageN;
    this._pos = state.pos;
    this._timestamp = state.timestamp;
    this.sums = state.sums;
    this._kind = state.kind;
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

  /** The first 100 bytes of the database file (fewer when it is shorter; empty when it does not exist). */
  async readHeader(): Promise<Buffer> {
    return this.dbFile === null ? Buffer.alloc(0) : this.dbFile.read(100, 0);
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
   * In a rollback-journal transaction the pages join the next commit; in
   * WAL mode the write is a checkpoint copying committed frames back, and
   * must carry exactly such a version of each page.
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
      const first = offset / ps + 1;
      const count = data.length / ps;
      const sums = this.checksums();
      const newSums: bigint[] = [];
      for (let i = 0; i < count; i++) newSums.push(checksumPage(first + i, data.subarray(i * ps, (i + 1) * ps)));
      const journaled = await this.journal.isHot();
      if (journaled) {
        if (this.dirty.size === 0) this.undo.reset();
        for (let i = 0; i < count; i++) {
          const pgno = first + i;
          if (!this.dirty.has(pgno) && pgno <= this._pageN) await this.saveUndo(file, pgno, sums.get(pgno));
        }
      } else if (this.wal.committedPages.size > 0) {
        for (let i = 0; i < count; i++) {
          const pgno = first + i;
          if (!this.wal.isCommittedVersion(pgno, newSums[i]!)) {
            this.refuse(`a write of page ${pgno} in WAL mode that is not a checkpoint of a committed frame`);
          }
        }
      } else {
        this.refuseUnjournaled(`a ${data.length}-byte write at offset ${offset}`);
      }
      await this.keepForViews(file, first, first + count - 1);
      await file.write(data, offset);
      this.stats.databaseWrites++;
      for (let i = 0; i < count; i++) {
        const pgno = first + i;
        if (journaled && !this.dirty.has(pgno)) this.dirty.set(pgno, sums.get(pgno));
        sums.set(pgno, newSums[i]!);
      }
    });
  }

  /** SQLite shrinking the file: VACUUM or auto-vacuum before its commit, a checkpoint after one. */
  async truncateDatabase(size: number): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.requireDatabaseFile();
      const ps = this._pageSize;
      if (ps === 0 ? size !== 0 : size % ps !== 0) {
        throw new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: database size ${size} is not a multiple of the page size ${ps}`);
      }
      const current = await file.size();
      if (size === current) return;
      if (!(await this.journal.isHot())) {
        // VACUUM cuts the pages past the new end after it has finalized the
        // journal, and a checkpoint cuts the file to the committed size:
        // allowed when the file shrinks to exactly the committed page count.
        const hdr = await file.read(100, 0);
        const count = this._kind === 'wal' ? this._pageN : hdr.length >= 100 ? hdr.readUInt32BE(28) : 0;
        if (ps === 0 || size !== count * ps || size > current) this.refuseUnjournaled(`resizing to ${size} bytes`);
      }
      if (ps !== 0) await this.keepForViews(file, size / ps + 1, Math.ceil(current / ps));
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
      await this.journal.create();
    });
  }

  async statJournal(): Promise<Stats | null> {
    return this.journal.handle === null ? null : this.journal.handle.stat();
  }

  async readJournal(length: number, offset: number): Promise<Buffer> {
    return this.journal.require().read(length, offset);
  }

  /**
   * A journal write. In PERSIST mode SQLite commits by overwriting the first
   * 28 header bytes with zeros; that write is the commit point, so the LTX
   * file is made durable before the header is zeroed.
   */
  async writeJournal(offset: number, data: Uint8Array): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.journal.require();
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
      if (offset < 8) this.journal.touched();
    });
  }

  /** TRUNCATE mode's commit point is the journal's truncation to zero. */
  async truncateJournal(size: number): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      const file = this.journal.require();
      if (size !== 0) {
        // PERSIST mode with journal_size_limit trims the journal after
        // zeroing its header (the commit point, already handled): a
        // finalized journal may shrink. Anything else would cut records
        // out of a live journal.
        const head = await file.read(28, 0);
        if (head.length === 28 && head.every((b) => b === 0) && size >= 28 && size < (await file.size())) {
          await file.truncate(size);
          this.journal.touched();
          return;
        }
        throw new StoreError(
          'ERR_STORE_INVALID_WRITE',
          `${this.name}: the journal can only be truncated to 0 bytes, or shrunk after its header was zeroed (asked for ${size})`,
        );
      }
      await this.commitJournal('truncate');
      await file.truncate(0);
      this.journal.touched();
    });
  }

  async syncJournal(dataOnly: boolean): Promise<void> {
    await this.journal.handle?.sync(dataOnly);
  }

  /** DELETE mode's commit point is the journal's removal. */
  async removeJournal(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      this.journal.require();
      await this.commitJournal('delete');
      await this.journal.retire();
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
    if (!(await this.journal.isHot()) || this._pageSize === 0) {
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
    const header = this.newCommitHeader(txid, commit);
    const path = this.opts.layout.ltxPath(this.name, txid, txid);
    const pages = pgnos.length * this._pageSize > READ_CHUNK * 4 ? this.readPages(pgnos) : await collect(this.readPages(pgnos));
    await writeLtxDurably(this.sys, path, header, pages, postApply);
    this.dirty.clear();
    this.stats.commits++;
    this._kind = kindOfPage1(hdr);
    this.advance('commit', header, postApply, path);
    this.log.debug({ txid: formatTXID(txid), pages: pgnos.length, mode }, 'committed');
    return true;
  }

  private newCommitHeader(txid: bigint, commit: number, wal?: WalTransaction): Header {
    return newHeader({
      flags: this.opts.compress ? HEADER_FLAG_COMPRESS_LZ4 : 0,
      pageSize: this._pageSize,
      commit,
      minTXID: txid,
      maxTXID: txid,
      timestamp: BigInt(Date.now()),
      preApplyChecksum: txid === 1n ? 0n : this._pos.postApplyChecksum,
      nodeID: this.opts.nodeID,
      ...(wal === undefined ? {} : { walOffset: BigInt(wal.offset), walSize: BigInt(wal.size), walSalt1: wal.salt1, walSalt2: wal.salt2 }),
    });
  }

  // ---------------------------------------------------------------- the WAL

  /** A client created `<name>-wal` (a connection opening the database in WAL mode; replicas too). */
  async createWal(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireDatabaseFile();
      if (!this.wal.exists) this.wal.attach(await this.sys.open(this.opts.layout.walPath(this.name), 'create'));
    });
  }

  async statWal(): Promise<Stats | null> {
    return this.wal.handle === null ? null : this.wal.handle.stat();
  }

  async readWal(length: number, offset: number): Promise<Buffer> {
    if (this.wal.handle === null) throw notFound(`${this.name}-wal`);
    return this.wal.handle.read(length, offset);
  }

  /**
   * A write to the WAL. The write that completes a transaction (its commit
   * frame, every frame valid) is the commit point: the LTX file is durable
   * before SQLite is told the write succeeded, so before it publishes the
   * transaction to readers and checkpoints. If capturing fails, SQLite
   * gets an I/O error and the transaction fails: no acknowledged commit is
   * ever missing from the history.
   */
  async writeWal(offset: number, data: Uint8Array): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      this.requireDatabaseFile();
      if (offset === 0) await this.keepWalForViews();
      const tx = await this.wal.write(offset, data, () => this.walBackfilled());
      this.stats.walWrites++;
      if (tx === null) return;
      try {
        await this.commitWal(tx);
      } catch (err) {
        this.wal.abandon();
        this.log.error({ err, offset: tx.offset, size: tx.size }, 'could not record a WAL transaction; SQLite is told it failed');
        throw err;
      }
    });
  }

  /**
   * SQLite truncates the WAL: to 0 after a TRUNCATE checkpoint, or to its
   * journal_size_limit after a restart.
   */
  async truncateWal(size: number): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      if (size === 0) await this.keepWalForViews();
      if (this.wal.handle === null) throw notFound(`${this.name}-wal`);
      await this.wal.truncate(size, () => this.walBackfilled());
    });
  }

  async syncWal(dataOnly: boolean): Promise<void> {
    await this.wal.handle?.sync(dataOnly);
  }

  /** SQLite deletes `<name>-wal` (the last connection closed after a checkpoint, or the database leaves WAL mode). */
  async removeWal(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireWriteable();
      if (!this.wal.exists) throw notFound(`${this.name}-wal`);
      await this.keepWalForViews();
      const file = await this.wal.detach(() => this.walBackfilled());
      await file?.close();
      await this.sys.unlink(this.opts.layout.walPath(this.name));
    });
  }

  /** Every committed WAL page is in the database file with its newest version. */
  private walBackfilled(): boolean {
    const sums = this.sums;
    return this.wal.backfilled((pgno) => sums?.get(pgno) ?? 0n, this._pageN);
  }

  /** Records the WAL transaction SQLite just finished writing as the next LTX file. */
  private async commitWal(tx: WalTransaction): Promise<void> {
    const ps = this.wal.pageSize;
    if (this._pageSize === 0) this._pageSize = ps;
    if (ps !== this._pageSize) {
      this.refuse(`WAL frames of ${ps}-byte pages in a database of ${this._pageSize}-byte pages`);
    }
    const txid = this._pos.txid + 1n;
    const lock = lockPgno(ps);
    const sums = this.checksums();
    const committed = this.wal.committedPages;
    // The checksum of the page as of the last transaction: its newest WAL
    // version, else the database file's (pages past the old size: none).
    const oldSum = async (pgno: number): Promise<bigint> => {
      if (pgno > this._pageN || pgno === lock) return 0n;
      const w = committed.get(pgno);
      if (w !== undefined) return w.sum;
      let s = sums.get(pgno);
      if (s === 0n) {
        const data = await this.requireDatabaseFile().read(ps, (pgno - 1) * ps);
        if (data.length !== ps) throw this.invalid(`page ${pgno} is beyond the end of the database file`);
        s = checksumPage(pgno, data);
        sums.set(pgno, s);
      }
      return s;
    };
    const pages: Page[] = [];
    const newSums = new Map<number, bigint>();
    let x = txid === 1n ? CHECKSUM_FLAG : this._pos.postApplyChecksum;
    for (const p of tx.pages) {
      if (p.pgno === lock) continue;
      const data = await this.wal.readFramePage(p.frame);
      const sum = checksumPage(p.pgno, data);
      newSums.set(p.pgno, sum);
      const old = await oldSum(p.pgno);
      if (sum === old && txid !== 1n) continue;
      x = CHECKSUM_FLAG | ((x ^ old ^ sum) & LOW63);
      pages.push({ pgno: p.pgno, data });
    }
    for (let p = tx.commit + 1; p <= this._pageN; p++) x = CHECKSUM_FLAG | ((x ^ (await oldSum(p))) & LOW63);
    if (txid === 1n) await this.completeFirstTransaction(pages, tx.commit, lock);
    if (pages.length === 0 && txid > 1n && tx.commit === this._pageN) {
      // Nothing changed (SQLite repeating a commit frame to pad the WAL to a sector boundary).
      this.wal.commit(tx, newSums);
      return;
    }
    const header = this.newCommitHeader(txid, tx.commit, tx);
    const path = this.opts.layout.ltxPath(this.name, txid, txid);
    await writeLtxDurably(this.sys, path, header, pages, x);
    this.wal.commit(tx, newSums);
    this.stats.commits++;
    const page1 = pages.find((p) => p.pgno === 1);
    if (page1 !== undefined) this._kind = kindOfPage1(page1.data);
    this.advance('commit', header, x, path);
    this.log.debug({ txid: formatTXID(txid), pages: pages.length, walOffset: tx.offset }, 'committed (WAL)');
  }

  /**
   * The first transaction of a database is a snapshot-shaped LTX file: it
   * must hold every page. A database born in WAL mode writes them all in
   * its first transaction; any it did not are read from the database file.
   */
  private async completeFirstTransaction(pages: Page[], commit: number, lock: number): Promise<void> {
    const have = new Set(pages.map((p) => p.pgno));
    const ps = this._pageSize;
    for (let p = 1; p <= commit; p++) {
      if (p === lock || have.has(p)) continue;
      const data = await this.requireDatabaseFile().read(ps, (p - 1) * ps);
      if (data.length !== ps) throw this.invalid(`the first transaction leaves page ${p} unwritten`);
      pages.push({ pgno: p, data });
    }
    pages.sort((a, b) => a.pgno - b.pgno);
  }

  // ---------------------------------------------------------- the wal-index

  async createShm(): Promise<void> {
    await this.mutex.run(async () => {
      this.requireDatabaseFile();
      this.shmFile ??= await this.sys.open(this.opts.layout.shmPath(this.name), 'create');
    });
  }

  async statShm(): Promise<Stats | null> {
    return this.shmFile === null ? null : this.shmFile.stat();
  }

  async readShm(length: number, offset: number): Promise<Buffer> {
    if (this.shmFile === null) throw notFound(`${this.name}-shm`);
    return this.shmFile.read(length, offset);
  }

  /** The wal-index is SQLite's shared memory: readers use it on replicas too, so writes pass through everywhere. */
  async writeShm(offset: number, data: Uint8Array): Promise<void> {
    if (this.shmFile === null) throw notFound(`${this.name}-shm`);
    await this.shmFile.write(data, offset);
    this.stats.shmWrites++;
  }

  async truncateShm(size: number): Promise<void> {
    if (this.shmFile === null) throw notFound(`${this.name}-shm`);
    await this.shmFile.truncate(size);
  }

  async syncShm(dataOnly: boolean): Promise<void> {
    await this.shmFile?.sync(dataOnly);
  }

  async removeShm(): Promise<void> {
    await this.mutex.run(async () => {
      const file = this.shmFile;
      if (file === null) throw notFound(`${this.name}-shm`);
      this.shmFile = null;
      await file.close();
      await this.sys.unlink(this.opts.layout.shmPath(this.name));
    });
  }

  // ------------------------------------------------------------------- pages

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
        throw this.invalid(`page ${pgnos[i]! + Math.floor(got.length / ps)} is beyond the end of the database file`);
      }
      for (let k = 0; k < n; k++) yield { pgno: pgnos[i + k]!, data: got.subarray(k * ps, (k + 1) * ps) };
      i = j;
    }
  }

  /**
   * A consistent view of the database as of its current position, read
   * without holding anything: writers hand the view any page it still
   * needs before they change it. Close it with `closeView`.
   */
  async openView(): Promise<SnapshotView> {
    return this.mutex.run(() => {
      const frames = new Map<number, number>();
      for (const [pgno, p] of this.wal.committedPages) if (pgno <= this._pageN) frames.set(pgno, p.frame);
      const view = new SnapshotView(this._pos, this._pageSize, this._pageN, frames, VIEW_MAX_KEPT_BYTES);
      this.views.add(view);
      return view;
    });
  }

  closeView(view: SnapshotView): void {
    this.views.delete(view);
  }

  /** Page `pgno` as of the view's position; pages must be read in ascending order. */
  async readViewPage(view: SnapshotView, pgno: number): Promise<Buffer> {
    const ps = view.pageSize;
    const frame = view.walFrames.get(pgno);
    let data: Buffer;
    if (frame !== undefined && this.wal.exists && !view.overflow) data = Buffer.from(await this.wal.readFramePage(frame));
    else data = await this.requireDatabaseFile().read(ps, (pgno - 1) * ps);
    const kept = view.take(pgno);
    if (view.overflow) throw this.invalid('too many pages changed while a snapshot was read; it will be retried');
    const page = kept ?? data;
    if (page.length !== ps) throw this.invalid(`page ${pgno} is beyond the end of the database file`);
    return page;
  }

  /** Hands open views the current bytes of database pages [first, last] before they change. */
  private async keepForViews(file: StoreFile, first: number, last: number): Promise<void> {
    if (this.views.size === 0) return;
    const ps = this._pageSize;
    for (const view of this.views) {
      for (let p = first; p <= Math.min(last, view.pageN); p++) {
        if (!view.needs(p) || view.walFrames.has(p)) continue;
        const data = await file.read(ps, (p - 1) * ps);
        if (data.length === ps) view.keep(p, data);
      }
    }
  }

  /** The WAL is about to restart, shrink or go: views keep the WAL pages they still need. */
  private async keepWalForViews(): Promise<void> {
    for (const view of this.views) {
      for (const [pgno, frame] of view.walFrames) {
        if (view.needsFrame(pgno, frame) && this.wal.exists) view.keep(pgno, await this.wal.readFramePage(frame));
      }
    }
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
        await writeLtxDurably(this.sys, path, header, [], CHECKSUM_FLAG);
        await this.removeDataFiles();
        this.stats.commits++;
        this.advance('drop', header, CHECKSUM_FLAG, path);
      } else {
        await this.removeDataFiles();
      }
    });
  }

  private async removeDataFiles(): Promise<void> {
    for (const view of this.views) {
      for (let p = 1; p <= view.pageN; p++) {
        if (view.needs(p)) view.keep(p, await this.readViewPageNow(view, p));
      }
    }
    await this.journal.remove();
    await (await this.wal.detach(() => true))?.close();
    await this.sys.unlink(this.opts.layout.walPath(this.name));
    await this.shmFile?.close();
    this.shmFile = null;
    await this.sys.unlink(this.opts.layout.shmPath(this.name));
    const file = this.dbFile;
    this.dbFile = null;
    await file?.close();
    await this.sys.unlink(this.databasePath);
    this.sums?.clear();
    this.dirty.clear();
    this._kind = 'rollback';
    void this.invalidator?.entriesChanged(this.name);
  }

  private async readViewPageNow(view: SnapshotView, pgno: number): Promise<Buffer> {
    const frame = view.walFrames.get(pgno);
    if (frame !== undefined && this.wal.exists) return this.wal.readFramePage(frame);
    return this.requireDatabaseFile().read(view.pageSize, (pgno - 1) * view.pageSize);
  }

  // ------------------------------------------------------------- applying LTX

  /**
   * Applies an LTX file to the database file: pages written through the
   * checksum-tracking path, file truncated to the new size, the result
   * checked against the file's post-apply checksum, all while no SQLite
   * client is in a transaction (the client locks are taken only for the
   * writes themselves). The caller has already verified the file end to
   * end, so a failure here means the disk changed under us.
   */
  async applyLtx(path: string, opts: ApplyOptions = {}): Promise<Header> {
    const f = await this.sys.open(path, 'r');
    if (f === null) throw new StoreError('ERR_STORE_CORRUPT_LTX', `${path}: no such LTX file`);
    const dec = new LtxDecoder(fileChunks(f), { strict: true });
    try {
      const header = await dec.decodeHeader();
      const pages = async function* (): AsyncGenerator<Page> {
        for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) yield p;
      };
      await this.applyLocked(header, pages(), () => dec.close(), path, opts);
      return header;
    } finally {
      await dec.destroy();
      await f.close();
    }
  }

  /**
   * Applies an LTX file whose pages were already decoded and verified (a
   * replica keeps an incremental's pages from the pass that checked it).
   */
  async applyDecoded(header: Header, trailer: Trailer, pages: readonly Page[], path: string, opts: ApplyOptions = {}): Promise<void> {
    await this.applyLocked(header, pages, () => Promise.resolve(trailer), path, opts);
  }

  /** Takes SQLite clients' locks (as of the current journal mode), then applies. */
  private async applyLocked(
    header: Header,
    pages: AsyncIterable<Page> | Iterable<Page>,
    trailerOf: () => Promise<Trailer>,
    path: string,
    opts: ApplyOptions,
  ): Promise<void> {
    const apply = (): Promise<void> => this.mutex.run(() => this.applyPages(header, pages, trailerOf, path, opts));
    if (opts.clientsLocked === true) return apply();
    if (this.dbFile === null && header.commit === 0) return apply();
    await this.runExclusive(apply, opts.lockTimeoutMs);
    // Only once the locks are given back: retiring closes the descriptors they are held on.
    if (this.walToRetire) await this.mutex.run(() => this.retireWalIfUnused());
  }

  /**
   * Runs `fn` while no SQLite client of this database is in a transaction
   * (and none can start one), and no other exclusive work of the store's
   * runs: what an import needs from writing its LTX file to applying it.
   */
  async runExclusive<T>(fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
    return this.exclusiveWork.run(async () => {
      if (this.dbFile === null) {
        // A database new to this node (a replica's first apply, an import):
        // its file must exist in the mount for the locks to be taken there,
        // and no client can have used it yet.
        await this.mutex.run(async () => {
          await this.sys.mkdirs(this.ltxDir);
          this.dbFile ??= await this.sys.open(this.databasePath, 'create');
        });
        await this.invalidator?.entriesChanged(this.name);
      }
      const release = await this.lockClients(timeoutMs);
      try {
        return await fn();
      } finally {
        await release();
      }
    });
  }

  /**
   * Keeps every SQLite client of this database out until released. While a
   * `-wal` file exists, connections open the database in WAL mode whatever
   * page 1 says (SQLite checks for the file), and they keep SHARED on the
   * database as long as they are open: the wal-index locks are what
   * exclude them then.
   */
  private async lockClients(timeoutMs = CLIENT_LOCK_TIMEOUT_MS): Promise<() => Promise<void>> {
    const kind: JournalKind = this.wal.exists || this._kind === 'wal' ? 'wal' : 'rollback';
    return this.opts.clientLocks().exclusive(this.name, kind, AbortSignal.timeout(timeoutMs));
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
      await this.opts.clientLocks().forget(this.name);
      this._pageSize = header.pageSize;
      this.advance('drop', header, CHECKSUM_FLAG, path);
      return;
    }
    if (this._pageSize !== header.pageSize) {
      this._pageSize = header.pageSize;
      this.sums = null;
    }
    const created = this.dbFile === null;
    if (created) this.dbFile = await this.sys.open(this.databasePath, 'create');
    const file = this.requireDatabaseFile();
    // The store writes the database file itself: whatever the WAL holds is
    // superseded (on a replica it is always empty).
    if (this.wal.exists && this.wal.committedEnd > 0) {
      await this.keepWalForViews();
      await this.wal.handle?.truncate(0);
      this.wal.clear();
      this.invalidator?.walChanged(this.name);
    }
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
      await this.keepForViews(file, batchFirst, batchFirst + batchPages - 1);
      await file.write(batch.subarray(0, batchPages * ps), (batchFirst - 1) * ps);
      batchPages = 0;
    };
    let page1: Buffer | null = null;
    for await (const p of pages) {
      if (batchPages > 0 && (p.pgno !== batchFirst + batchPages || (batchPages + 1) * ps > batch.length)) await flush();
      if (batchPages === 0) batchFirst = p.pgno;
      batch.set(p.data, batchPages * ps);
      batchPages++;
      if (p.pgno === 1) page1 = Buffer.from(p.data.subarray(0, 100));
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
      await this.keepForViews(file, header.commit + 1, Math.ceil(size / ps));
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
    if (page1 === null) page1 = await file.read(100, 0);
    const kindBefore = this._kind;
    this._kind = kindOfPage1(page1);
    // WAL connections only notice a change through the wal-index header.
    if (this._kind === 'wal' || kindBefore === 'wal' || this.wal.exists) await this.publishToWalReaders(header.commit);
    this.walToRetire = this._kind === 'rollback' && this.wal.exists && this.wal.committedEnd === 0;
    if (created) void this.invalidator?.entriesChanged(this.name);
    this.advance(opts.kind ?? 'apply', header, trailer.postApplyChecksum, path);
  }

  /**
   * After the store changed a WAL-mode database file itself: readers need
   * an (empty) `-wal` to open it, and a wal-index header they have not seen
   * (mxFrame 0, the new size, a new change counter), which makes every
   * open connection drop its page cache at its next transaction.
   */
  private async publishToWalReaders(nPage: number): Promise<void> {
    if (!this.wal.exists) {
      this.wal.attach(await this.sys.open(this.opts.layout.walPath(this.name), 'create'));
      void this.invalidator?.entriesChanged(this.name);
    }
    const locks = this.opts.clientLocks();
    const current = parseShmHeader(await locks.readShm(this.name, SHM_HEADER_SIZE));
    const salt = current?.salt ?? Buffer.from([0x4c, 0x46, 0x53, 0x01, 0, 0, 0, 0]);
    const header = encodeShmHeader({
      change: (current?.change ?? 0) + 1,
      bigEndianChecksums: current?.bigEndianChecksums ?? false,
      pageSize: this._pageSize,
      mxFrame: 0,
      nPage,
      frameChecksum: [0, 0],
      salt,
    });
    await locks.writeShm(this.name, 0, header);
  }

  /**
   * The database left WAL mode: once no connection uses the wal-index, the
   * empty `-wal` (and `-shm`) go, so new connections open it in
   * rollback-journal mode (SQLite opens any database in WAL mode while a
   * `-wal` file exists).
   */
  private async retireWalIfUnused(): Promise<void> {
    this.walToRetire = false;
    const locks = this.opts.clientLocks();
    if (!this.wal.exists || this._kind !== 'rollback' || (await locks.walConnections(this.name))) return;
    await (await this.wal.detach(() => true))?.close();
    await this.sys.unlink(this.opts.layout.walPath(this.name));
    await this.shmFile?.close();
    this.shmFile = null;
    await this.sys.unlink(this.opts.layout.shmPath(this.name));
    // The store's own descriptors on `-shm` in the mount go with it.
    await locks.forget(this.name);
    void this.invalidator?.entriesChanged(this.name);
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
    await this.sys.syncDir(this.ltxDir);
  }

  /** Resolves once every mutation already queued (a commit in flight) has finished. */
  async settle(): Promise<void> {
    await this.mutex.run(() => undefined);
  }

  // ----------------------------------------------------------------- helpers

  private advance(kind: DBChangeKind, header: Header, postApply: bigint, ltxPath: string): void {
    // `-pos` exists from the first transaction on: the kernel may hold a "no such file" for it.
    if (this._pos.txid === 0n) void this.invalidator?.entriesChanged(this.name);
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

  /** Page checksums, created on first use once the page size is known. */
  private checksums(): PageChecksums {
    if (this.sums === null) this.sums = new PageChecksums(lockPgno(this._pageSize));
    return this.sums;
  }

  /** The database-file checksum for `pageCount` pages, after forgetting pages past it. */
  private async checksumAt(pageCount: number): Promise<bigint> {
    const sums = this.checksums();
    sums.truncate(pageCount);
    for (const p of sums.missing(pageCount)) {
      // Pages SQLite never wrote through us (a file that predates the store
      // or grew oddly): take them from disk rather than publish a wrong sum.
      const data = await this.requireDatabaseFile().read(this._pageSize, (p - 1) * this._pageSize);
      if (data.length !== this._pageSize) throw this.invalid(`page ${p} is beyond the end of the database file`);
      sums.set(p, checksumPage(p, data));
    }
    return sums.checksum(pageCount);
  }

  /**
   * The checksum of the database as of its position, computed from the
   * page checksums (tests, strict verification, recovery): in WAL mode the
   * committed WAL frames count over the database file.
   */
  async currentChecksum(pageCount = this._pageN): Promise<bigint> {
    return this.mutex.run(async () => {
      const committed = this.wal.committedPages;
      if (committed.size === 0) return this.checksumAt(pageCount);
      const sums = this.checksums();
      let x = 0n;
      const lock = lockPgno(this._pageSize);
      for (let p = 1; p <= pageCount; p++) {
        if (p === lock) continue;
        let s = committed.get(p)?.sum ?? sums.get(p);
        if (s === 0n) {
          const data = await this.requireDatabaseFile().read(this._pageSize, (p - 1) * this._pageSize);
          if (data.length !== this._pageSize) throw this.invalid(`page ${p} is beyond the end of the database file`);
          s = checksumPage(p, data);
          sums.set(p, s);
        }
        x ^= s & LOW63;
      }
      return CHECKSUM_FLAG | x;
    });
  }

  /**
   * SQLite changes the database file only after it has synced a rollback
   * journal that starts with the magic (with synchronous=OFF it writes the
   * magic at once), and only until it finalizes that journal; in WAL mode
   * only to copy committed frames back. A write at any other time
   * (journal_mode OFF or MEMORY, a client writing the file directly) has no
   * commit point we could observe: accepting it would leave the file
   * different from its last LTX file forever.
   */
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
      `${this.name}: ${what} outside a journaled transaction (no synced rollback journal, no WAL); journal_mode OFF and MEMORY are not supported`,
    );
  }

  private refuse(why: string): never {
    this.log.error({ why }, 'refusing a write');
    throw this.invalid(why);
  }

  private invalid(why: string): StoreError {
    return new StoreError('ERR_STORE_INVALID_WRITE', `${this.name}: ${why}`);
  }

  /**
   * Keeps the committed bytes of a page before the transaction first
   * overwrites it, so that recovery after a crash can restore the pages
   * SQLite's journal does not hold (reused free pages) byte for byte.
   */
  private async saveUndo(file: StoreFile, pgno: number, committed: bigint): Promise<void> {
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
    return restoreUndoLog(this.sys, this.opts.layout.undoPath(this.name), this.databasePath, pos);
  }

  private requireWriteable(): void {
    if (!this.opts.writeable()) {
      throw new StoreError('ERR_STORE_READONLY', `${this.name}: this node is a read-only replica; write on the primary`);
    }
  }

  private requireDatabaseFile(): StoreFile {
    if (this.dbFile === null) throw notFound(this.name);
    return this.dbFile;
  }

  /**
   * Recovery at startup: rolls back a hot journal (the database returns to
   * its last committed state) and removes it. Nothing else may use the
   * database. Returns whether a hot journal was rolled back and how many
   * pages it restored.
   */
  async rollBackJournalAtStartup(): Promise<{ hot: boolean; pages: number; endReason: string | null }> {
    if (!this.journal.exists) return { hot: false, pages: 0, endReason: null };
    await this.journal.close();
    const result = await rollbackJournalFile(this.sys, this.databasePath, this.opts.layout.journalPath(this.name));
    return { hot: result.hot, pages: result.pagesRestored, endReason: result.endReason };
  }

  /**
   * Rolls back a journal left by a transaction that could not commit (this
   * node stopped being primary under a writer): the database returns to
   * its last committed state and the checksums are recomputed from disk.
   * Keeps SQLite clients out while it works. Returns whether anything was
   * undone.
   */
  async rollbackLeftoverJournal(opts: { clientsLocked?: boolean } = {}): Promise<boolean> {
    if (!this.journal.exists) return false;
    const rollBack = (): Promise<boolean> =>
      this.mutex.run(async () => {
        if (!this.journal.exists) return false;
        await this.journal.close();
        const result = await rollbackJournalFile(this.sys, this.databasePath, this.opts.layout.journalPath(this.name));
        await this.restoreUndo(this._pos);
        this.undo.reset();
        this.dirty.clear();
        if (this._pageSize !== 0 && this.dbFile !== null) {
          const head = await this.dbFile.read(100, 0);
          const pageCount = head.length >= 100 ? head.readUInt32BE(28) : 0;
          this.sums = await this.loadChecksums(this._pageSize, pageCount);
          await this.invalidator?.databaseChanged(this.name, 'all');
        }
        void this.invalidator?.entriesChanged(this.name);
        return result.hot;
      });
    return opts.clientsLocked === true ? rollBack() : this.runExclusive(rollBack);
  }

  /**
   * Recovery at startup in WAL mode: copies the frames of the transactions
   * the LTX history recorded (those at or before `end`) into the database
   * file, cuts the file to `commit` pages, and removes the WAL. Frames past
   * `end` were never captured: SQLite was told they failed, or the crash
   * came first; they are dropped. Nothing else may use the database.
   */
  async checkpointWalAtStartup(end: number, commit: number): Promise<number> {
    const wal = this.wal.handle;
    const db = this.requireDatabaseFile();
    if (wal === null) return 0;
    const pages = await newestFramePages(wal, end);
    for (const [pgno, data] of pages) await db.write(data, (pgno - 1) * data.length);
    if (pages.size > 0 && commit > 0) {
      const ps = pages.values().next().value!.length;
      await db.truncate(commit * ps);
    }
    await db.sync();
    await (await this.wal.detach(() => true))?.close();
    await this.sys.unlink(this.opts.layout.walPath(this.name));
    return pages.size;
  }

  /** Recovery at startup: the WAL cannot be trusted at all (it belongs to no recorded transaction). */
  async discardWalAtStartup(): Promise<void> {
    await (await this.wal.detach(() => true))?.close();
    await this.sys.unlink(this.opts.layout.walPath(this.name));
  }

  /** The WAL file, for recovery to inspect. */
  get walFile(): StoreFile | null {
    return this.wal.handle;
  }
}

/** Rollback journal or WAL, from bytes 18/19 of page 1 (2 = WAL). */
function kindOfPage1(page1: Uint8Array): JournalKind {
  return page1.length >= 20 && page1[19] === 2 ? 'wal' : 'rollback';
}

async function collect(pages: AsyncIterable<Page>): Promise<Page[]> {
  const out: Page[] = [];
  for await (const p of pages) out.push({ pgno: p.pgno, data: Buffer.from(p.data) });
  return out;
}

/**
 * The newest version of each page in the valid frames of a WAL up to
 * offset `end` (exclusive): what a checkpoint of those transactions writes.
 */
async function newestFramePages(wal: StoreFile, end: number): Promise<Map<number, Buffer>> {
  const out = new Map<number, Buffer>();
  const header = parseWalHeader(await wal.read(WAL_HEADER_SIZE, 0));
  if (header === null) return out;
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
  for (let at = WAL_HEADER_SIZE; at + frameSize <= end; at += frameSize) {
    const frame = await wal.read(frameSize, at);
    if (frame.length !== frameSize) break;
    out.set(frame.readUInt32BE(0), Buffer.from(frame.subarray(WAL_FRAME_HEADER_SIZE)));
  }
  return out;
}

function notFound(name: string): StoreError {
  return new StoreError('ERR_STORE_DB_NOT_FOUND', `${name}: no such file`);
}
