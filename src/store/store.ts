import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { formatNodeID, silentLogger, type Logger } from '../internal/index.js';
import { invalidDatabaseName } from './names.js';
import { noClientLocks, type ClientLocks } from './client-locks.js';
import { DB, type CacheInvalidator, type DBChange } from './db.js';
import { StoreError } from './errors.js';
import { StoreLayout } from './layout.js';
import { recoverDatabase } from './recovery.js';
import { enforceRetention, RetentionError } from './retention.js';
import { recordNodeID } from './history.js';
import { realFS, type StoreFS } from './sys.js';

export interface StoreOptions {
  dataDir: string;
  /** LZ4-compress new LTX files (data.compress). */
  compress?: boolean;
  /** Keep LTX files at least this long (data.retention); 0 disables the monitor. */
  retentionMs?: number;
  retentionMonitorIntervalMs?: number;
  logger?: Logger;
  /** The file system (tests inject faults through it); default the real one. */
  sys?: StoreFS;
}

export interface StoreEvents {
  /** A database moved to a new position: local commit, applied LTX, or drop. */
  change: [DBChange];
  /** This node became primary or stopped being it. */
  role: [{ isPrimary: boolean }];
}

/**
 * All databases under one data directory, the node's identity, and whether
 * this node may write. Databases are recovered when the store opens, before
 * any client can see them through the mount.
 */
export class Store extends EventEmitter<StoreEvents> {
  readonly layout: StoreLayout;
  /** Random per start (LiteFS #361: cloned volumes must not share an ID). */
  readonly nodeID: bigint = randomBytes(8).readBigUInt64BE();
  readonly log: Logger;
  private readonly opts: StoreOptions;
  private readonly dbs = new Map<string, DB>();
  private primary = false;
  private retentionTimer: NodeJS.Timeout | null = null;
  /** Databases whose files are being removed (never committed, or deleted and expired). */
  private readonly removals = new Map<string, Promise<void>>();
  private closed = false;
  private _invalidator: CacheInvalidator | null = null;
  private _clientLocks: ClientLocks = noClientLocks;
  readonly sys: StoreFS;

  constructor(opts: StoreOptions) {
    super();
    this.opts = opts;
    this.layout = new StoreLayout(opts.dataDir);
    this.sys = opts.sys ?? realFS;
    this.log = (opts.logger ?? silentLogger).child({ component: 'store' });
  }

  get nodeIDString(): string {
    return formatNodeID(this.nodeID);
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  /** Role changes come from the lease loop (or the static primary at startup). */
  setPrimary(isPrimary: boolean): void {
    if (this.primary === isPrimary) return;
    this.primary = isPrimary;
    this.emit('role', { isPrimary });
  }

  set invalidator(inv: CacheInvalidator | null) {
    this._invalidator = inv;
    for (const db of this.dbs.values()) db.invalidator = inv;
  }

  get invalidator(): CacheInvalidator | null {
    return this._invalidator;
  }

  /** SQLite clients' locks as the store takes them: the mount's, once it is up (none before). */
  set clientLocks(locks: ClientLocks | null) {
    this._clientLocks = locks ?? noClientLocks;
  }

  get clientLocks(): ClientLocks {
    return this._clientLocks;
  }

  /** Recovers every database found under data/dbs. */
  async open(): Promise<void> {
    await this.sys.mkdirs(this.layout.dbsDir);
    await recordNodeID(this.layout.dataDir, this.nodeIDString);
    for (const name of (await this.sys.list(this.layout.dbsDir)).sort()) {
      if ((await this.sys.stat(this.layout.dbDir(name)))?.isDirectory !== true) continue;
      if (invalidDatabaseName(name) !== null) {
        this.log.warn({ dir: name }, 'ignoring a directory that is not a valid database name');
        continue;
      }
      const db = this.newDB(name);
      const report = await recoverDatabase(db, this.layout, this.sys, this.log.child({ db: name }));
      this.dbs.set(name, db);
      this.log.info({ db: name, txid: report.pos.txid.toString(16).padStart(16, '0'), pages: report.pageN }, 'database ready');
    }
    this.startRetention();
  }

  db(name: string): DB | undefined {
    return this.dbs.get(name);
  }

  databases(): DB[] {
    return [...this.dbs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Creates (or returns) a database: a client creating `<name>` on the primary. */
  async createDB(name: string): Promise<DB> {
    this.requireOpen();
    const invalid = invalidDatabaseName(name);
    if (invalid !== null) throw new StoreError('ERR_STORE_INVALID_NAME', `invalid database name ${JSON.stringify(name)}: ${invalid}`);
    await this.whenSettled(name);
    let db = this.dbs.get(name);
    if (db === undefined) {
      db = this.newDB(name);
      this.dbs.set(name, db);
    }
    await db.create();
    return db;
  }

  /** Gets or registers a database a replica is about to receive (no files yet). */
  async ensureDB(name: string): Promise<DB> {
    this.requireOpen();
    const invalid = invalidDatabaseName(name);
    if (invalid !== null) throw new StoreError('ERR_STORE_INVALID_NAME', `invalid database name ${JSON.stringify(name)}: ${invalid}`);
    await this.whenSettled(name);
    let db = this.dbs.get(name);
    if (db === undefined) {
      db = this.newDB(name);
      await db.openFiles();
      this.dbs.set(name, db);
    }
    return db;
  }

  /**
   * Forgets a database that never committed a transaction (a file created
   * in the mount that never became a SQLite database, or whose first
   * transaction rolled back) once nothing uses it: it leaves nothing
   * behind. Returns whether it was removed.
   */
  async discardIfNeverCommitted(name: string): Promise<boolean> {
    const db = this.dbs.get(name);
    if (db === undefined || db.pos.txid !== 0n || db.journalExists || db.walExists) return false;
    if ((await db.databaseSize()) > 0 || this.dbs.get(name) !== db) return false;
    // Gone from the map at once; creating the name again waits for the
    // files to be gone (see whenSettled).
    this.dbs.delete(name);
    const removal = (async () => {
      await db.close();
      await this._clientLocks.forget(name);
      await this.sys.removeTree(this.layout.dbDir(name));
    })();
    this.removals.set(name, removal);
    try {
      await removal;
    } finally {
      if (this.removals.get(name) === removal) this.removals.delete(name);
    }
    this.log.debug({ db: name }, 'removed a file that never became a database');
    return true;
  }

  /** Waits until no removal of `name`'s files is under way. */
  private async whenSettled(name: string): Promise<void> {
    await this.removals.get(name)?.catch(() => {});
  }

  /**
   * After a role change (LiteFS #229): a writer cut off mid-transaction when
   * this node stopped being primary leaves a journal and uncommitted pages;
   * undo them so the database matches its position again.
   */
  async recoverAfterRoleChange(): Promise<void> {
    for (const db of this.dbs.values()) {
      if (!db.journalExists) continue;
      if (await db.rollbackLeftoverJournal()) this.log.warn({ db: db.name }, 'rolled back a transaction cut off by the role change');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    for (const db of this.dbs.values()) await db.close();
    for (const db of this.dbs.values()) await this._clientLocks.forget(db.name);
  }

  /** Runs retention on every database once (the monitor calls this). */
  async enforceRetention(now = Date.now()): Promise<void> {
    const retentionMs = this.opts.retentionMs ?? 0;
    if (retentionMs <= 0) return;
    for (const db of [...this.dbs.values()]) {
      try {
        if (db.deleted && (await this.removeIfExpired(db, retentionMs, now))) continue;
        const removed = await enforceRetention(this.sys, db.ltxDir, retentionMs, now);
        db.stats.ltxReaped += removed.length;
        if (removed.length > 0) this.log.debug({ db: db.name, removed: removed.length }, 'retention removed LTX files');
      } catch (err) {
        if (err instanceof RetentionError) db.stats.ltxReaped += err.removed.length;
        // LiteFS swallowed these (an inverted err check); an operator needs to see them.
        this.log.error({ db: db.name, err }, 'LTX retention failed');
      }
    }
  }

  /**
   * A deleted database keeps its deletion LTX file (replicas that were
   * away still need it) until retention expires it; then the whole
   * database directory goes, and the name can start a new history.
   */
  private async removeIfExpired(db: DB, retentionMs: number, now: number): Promise<boolean> {
    const newest = this.layout.ltxPath(db.name, db.pos.txid, db.pos.txid);
    const st = await this.sys.stat(newest);
    if (st !== null && st.mtimeMs >= now - retentionMs) return false;
    if (this.dbs.get(db.name) !== db) return false;
    this.dbs.delete(db.name);
    const removal = (async () => {
      await db.close();
      await this._clientLocks.forget(db.name);
      await this.sys.removeTree(this.layout.dbDir(db.name));
    })();
    this.removals.set(db.name, removal);
    try {
      await removal;
    } finally {
      if (this.removals.get(db.name) === removal) this.removals.delete(db.name);
    }
    this.log.info({ db: db.name }, 'retention removed a deleted database');
    return true;
  }

  private startRetention(): void {
    const every = this.opts.retentionMonitorIntervalMs ?? 60_000;
    if ((this.opts.retentionMs ?? 0) <= 0 || every <= 0) return;
    this.retentionTimer = setInterval(() => {
      void this.enforceRetention();
    }, every);
    this.retentionTimer.unref();
  }

  private newDB(name: string): DB {
    const db = new DB({
      name,
      layout: this.layout,
      sys: this.sys,
      clientLocks: () => this._clientLocks,
      nodeID: this.nodeID,
      compress: this.opts.compress ?? true,
      logger: this.log,
      writeable: () => this.primary && !this.closed,
      onChange: (change) => this.emit('change', change),
    });
    db.invalidator = this._invalidator;
    return db;
  }

  private requireOpen(): void {
    if (this.closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }
}
