import { statfs } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import {
  FuseErrno,
  type Attr,
  type AttrReply,
  type CreateReply,
  type CreateRequest,
  type DirEntry,
  type EntryReply,
  type FsyncRequest,
  type FuseFilesystem,
  type FuseMount,
  type InitAdjust,
  type MknodRequest,
  type OpenReply,
  type OpenRequest,
  type ReaddirRequest,
  type ReadRequest,
  type ReleaseRequest,
  type RequestContext,
  type SetattrRequest,
  type StatfsReply,
  type WriteRequest,
} from '../fuse/index.js';
import type { Logger } from '../internal/index.js';
import type { ByteRange, CacheInvalidator, DB, Store } from '../store/index.js';
import { toFuseError } from './errno.js';
import { LAG_INO, PRIMARY_INO, ROOT_INO, InodeTable } from './inodes.js';
import { fileName, parseName, type FileKind, type ParsedName } from './names.js';
import { lagFileContent, posFileContent, primaryFileContent } from './virtual-files.js';

/** What the mount shows about the cluster (`.primary`, `.lag`, modes). */
export interface NodeStatus {
  /** The primary's hostname while this node is a replica connected to it; null otherwise. */
  primaryHostname(): string | null;
  /** Milliseconds since the primary was last heard from; 0 on the primary; null before the first sync. */
  lagMs(): number | null;
}

export interface LiteFSOptions {
  store: Store;
  status: NodeStatus;
  logger: Logger;
}

/*
 * The kernel may cache names and attributes for long: everything that
 * changes behind its back (applies, drops, imports, primary changes) is
 * invalidated explicitly, and what SQLite clients change goes through the
 * kernel, which keeps its own caches right (it drops a file's size and
 * mtime after every WRITE it forwards). Negative entries matter most:
 * SQLite looks for `-journal` at the start of every read transaction.
 * Virtual files (`-pos`, `.primary`, `.lag`) are generated on each read.
 */
const ENTRY_TTL = 60;
const NEGATIVE_TTL = 60;
const FILE_ATTR_TTL = 60;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const W_OK = 2;

/** Names of the real files behind a database: what the mount passes through. */
const REAL_KINDS: ReadonlySet<FileKind> = new Set(['database', 'journal', 'wal', 'shm']);

/**
 * The LiteFS filesystem: a flat root directory whose files are the
 * databases of the store, their journals, WAL files and wal-indexes, and a
 * few virtual files, served over FUSE. I/O passes through to the files
 * under the data directory; every mutation goes through the store's DB
 * object, which keeps the page checksums and turns commits into LTX files.
 *
 * SQLite's fcntl locks are not forwarded: the kernel keeps them (a read
 * transaction costs no request at all), and the store takes the same locks
 * through the mount when it must keep clients out (mount-locks.ts).
 */
export class LiteFS implements FuseFilesystem, CacheInvalidator {
  private readonly store: Store;
  private readonly status: NodeStatus;
  private readonly log: Logger;
  private readonly inodes = new InodeTable();
  private mount: FuseMount | null = null;
  private readonly startedNs = BigInt(Date.now()) * 1_000_000n;
  /** Open handles per database file: a database that never became one is removed when the last closes. */
  private readonly opens = new Map<string, number>();
  private readonly warnedNotSQLite = new Set<string>();

  constructor(opts: LiteFSOptions) {
    this.store = opts.store;
    this.status = opts.status;
    this.log = opts.logger.child({ component: 'fs' });
  }

  /** Connects kernel cache invalidation once the mount is up. */
  attach(mount: FuseMount): void {
    this.mount = mount;
    this.store.invalidator = this;
  }

  detach(): void {
    this.mount = null;
    if (this.store.invalidator === this) this.store.invalidator = null;
  }

  init(): InitAdjust {
    // The page cache is dropped only when we say so (explicitInvalData):
    // that is what lets warm reads stay in the kernel. Without getlk/setlk
    // handlers POSIX locks are not requested: the kernel keeps them. The
    // session never requests writeback caching, so writes arrive one by
    // one, in order (commit detection depends on it).
    return { enable: ['explicitInvalData'] };
  }

  // ------------------------------------------------------------------ names

  lookup(_ctx: RequestContext, parent: bigint, name: string): Promise<EntryReply> | EntryReply {
    if (parent !== ROOT_INO) throw new FuseErrno('ENOENT');
    const parsed = parseName(name);
    if (parsed === null) return negative();
    return this.entryFor(parsed).then((e) => e ?? negative());
  }

  private async entryFor(parsed: ParsedName): Promise<EntryReply | null> {
    const attr = await this.attrOf(parsed);
    if (attr === null) return null;
    return { nodeid: attr.ino, attr, entryTimeoutSec: ENTRY_TTL, attrTimeoutSec: this.attrTTL(parsed) };
  }

  private attrTTL(p: ParsedName): number {
    return p.kind !== 'primary' && p.kind !== 'lag' && REAL_KINDS.has(p.kind) ? FILE_ATTR_TTL : 0;
  }

  /** Attributes of a name, or null when it does not exist right now. */
  private async attrOf(p: ParsedName): Promise<Attr | null> {
    switch (p.kind) {
      case 'primary': {
        const host = this.status.primaryHostname();
        return host === null ? null : this.virtualAttr(PRIMARY_INO, 0o444, primaryFileContent(host).length);
      }
      case 'lag':
        return this.virtualAttr(LAG_INO, 0o444, lagFileContent(this.status.lagMs()).length);
      default:
        break;
    }
    const db = this.store.db(p.db);
    if (db === undefined || !db.exists) return null;
    const ino = this.inodes.ino(p.kind, p.db);
    const perm = this.store.isPrimary ? 0o666 : 0o444;
    switch (p.kind) {
      case 'database':
        return fileAttr(ino, await db.statDatabase(), perm);
      case 'journal':
        return fileAttr(ino, await db.statJournal(), perm);
      case 'wal':
        return fileAttr(ino, await db.statWal(), perm);
      case 'shm':
        // Readers write the wal-index too (read marks): writable everywhere.
        return fileAttr(ino, await db.statShm(), 0o666);
      case 'pos':
        return db.pos.txid === 0n ? null : this.virtualAttr(ino, 0o666, 34, BigInt(db.timestamp) * 1_000_000n);
      case 'lock':
        return null;
    }
  }

  private virtualAttr(ino: bigint, perm: number, size: number, mtimeNs = this.startedNs): Attr {
    return {
      ino,
      size: BigInt(size),
      atimeNs: mtimeNs,
      mtimeNs,
      ctimeNs: mtimeNs,
      mode: S_IFREG | perm,
      nlink: 1,
      uid: 0,
      gid: 0,
    };
  }

  private rootAttr(): Attr {
    return {
      ino: ROOT_INO,
      size: 4096n,
      atimeNs: this.startedNs,
      mtimeNs: this.startedNs,
      ctimeNs: this.startedNs,
      mode: S_IFDIR | (this.store.isPrimary ? 0o777 : 0o555),
      nlink: 2,
      uid: 0,
      gid: 0,
    };
  }

  /** The parsed name behind a node id (throws ENOENT for unknown ids). */
  private nodeName(ino: bigint): ParsedName {
    if (ino === PRIMARY_INO) return { kind: 'primary' };
    if (ino === LAG_INO) return { kind: 'lag' };
    const e = this.inodes.entry(ino);
    if (e === undefined) throw new FuseErrno('ENOENT');
    return e;
  }

  private dbOf(ino: bigint): { db: DB; kind: FileKind } {
    const p = this.nodeName(ino);
    if (p.kind === 'primary' || p.kind === 'lag') throw new FuseErrno('EPERM');
    const db = this.store.db(p.db);
    if (db === undefined || !db.exists) throw new FuseErrno('ENOENT');
    return { db, kind: p.kind };
  }

  // -------------------------------------------------------------- attributes

  async getattr(_ctx: RequestContext, ino: bigint): Promise<AttrReply> {
    if (ino === ROOT_INO) return { attr: this.rootAttr(), attrTimeoutSec: 0 };
    const p = this.nodeName(ino);
    const attr = await this.attrOf(p);
    if (attr === null) throw new FuseErrno('ENOENT');
    return { attr, attrTimeoutSec: this.attrTTL(p) };
  }

  async setattr(ctx: RequestContext, ino: bigint, req: SetattrRequest): Promise<AttrReply> {
    if (ino === ROOT_INO) return { attr: this.rootAttr(), attrTimeoutSec: 0 };
    const p = this.nodeName(ino);
    if (req.size !== undefined) {
      const { db, kind } = this.dbOf(ino);
      const size = Number(req.size);
      switch (kind) {
        case 'database':
          await guard(() => db.truncateDatabase(size));
          break;
        case 'journal':
          await guard(() => db.truncateJournal(size));
          break;
        case 'wal':
          await guard(() => db.truncateWal(size));
          break;
        case 'shm':
          await guard(() => db.truncateShm(size));
          break;
        default:
          throw new FuseErrno('EPERM', 'virtual files cannot be resized');
      }
    }
    // Mode, owner and times are accepted and ignored: the store decides
    // them (SQLite running as root chowns every journal it creates).
    void p;
    return this.getattr(ctx, ino);
  }

  access(_ctx: RequestContext, ino: bigint, mask: number): void {
    if ((mask & W_OK) !== 0 && ino !== ROOT_INO && !this.store.isPrimary) {
      const p = this.nodeName(ino);
      if (p.kind === 'database' || p.kind === 'journal' || p.kind === 'wal') throw new FuseErrno('EACCES');
    }
  }

  // ------------------------------------------------------ create and unlink

  async create(ctx: RequestContext, parent: bigint, name: string, _req: CreateRequest): Promise<CreateReply> {
    const entry = await this.createFile(parent, name);
    const p = this.nodeName(entry.nodeid);
    this.opened(p);
    void ctx;
    return { ...entry, ...this.openReplyFor(p) };
  }

  async mknod(_ctx: RequestContext, parent: bigint, name: string, req: MknodRequest): Promise<EntryReply> {
    if ((req.mode & 0o170000) !== S_IFREG) throw new FuseErrno('EPERM', 'only regular files can be created here');
    return this.createFile(parent, name);
  }

  private async createFile(parent: bigint, name: string): Promise<EntryReply> {
    if (parent !== ROOT_INO) throw new FuseErrno('ENOENT');
    const p = parseName(name);
    if (p === null || p.kind === 'primary' || p.kind === 'lag' || p.kind === 'pos' || p.kind === 'lock') {
      throw new FuseErrno('EPERM', `${name}: only databases and their journal, WAL and wal-index files can be created here`);
    }
    if (p.kind === 'database' || p.kind === 'journal') {
      if (!this.store.isPrimary) throw new FuseErrno('EACCES', 'read-only replica');
      if (p.kind === 'database') await guard(() => this.store.createDB(p.db));
      else await guard(() => this.existingDB(p.db).createJournal());
    } else {
      // A connection opening a WAL-mode database creates both, replicas too
      // (an empty WAL is how a reader finds there is nothing in it). For a
      // database in a rollback-journal mode they would make SQLite open it
      // in WAL mode: nothing but SQLite switching it does that.
      const db = this.existingDB(p.db);
      if (db.journalKind !== 'wal' && db.pos.txid !== 0n) {
        throw new FuseErrno('EOPNOTSUPP', `${name}: ${p.db} is not in WAL mode`);
      }
      await guard(() => (p.kind === 'wal' ? db.createWal() : db.createShm()));
    }
    const entry = await this.entryFor(p);
    if (entry === null) throw new FuseErrno('EIO');
    // The same node id may have served an earlier file of this name: the
    // kernel keeps the inode (and its page cache) while anything holds it.
    this.notify(() => this.mount?.notifyInvalInode(entry.nodeid, 0n, 0n));
    return entry;
  }

  private existingDB(name: string): DB {
    const db = this.store.db(name);
    if (db === undefined || !db.exists) throw new FuseErrno('ENOENT');
    return db;
  }

  async unlink(_ctx: RequestContext, parent: bigint, name: string): Promise<void> {
    if (parent !== ROOT_INO) throw new FuseErrno('ENOENT');
    const p = parseName(name);
    if (p === null || p.kind === 'primary' || p.kind === 'lag') throw new FuseErrno('ENOENT');
    if (p.kind === 'pos' || p.kind === 'lock') throw new FuseErrno('EPERM');
    const db = this.existingDB(p.db);
    switch (p.kind) {
      case 'database':
        if (!this.store.isPrimary) throw new FuseErrno('EACCES', 'read-only replica');
        return guard(async () => {
          await db.drop();
          await this.store.discardIfNeverCommitted(db.name);
        });
      case 'journal':
        if (!db.journalExists) throw new FuseErrno('ENOENT');
        if (!this.store.isPrimary) throw new FuseErrno('EACCES', 'read-only replica');
        return guard(() => db.removeJournal());
      case 'wal':
        if (!db.walExists) throw new FuseErrno('ENOENT');
        if (!this.store.isPrimary) throw new FuseErrno('EACCES', 'read-only replica');
        return guard(() => db.removeWal());
      case 'shm':
        if (!db.shmExists) throw new FuseErrno('ENOENT');
        return guard(() => db.removeShm());
    }
  }

  rename(): void {
    throw new FuseErrno('EPERM', 'renaming is not supported');
  }

  mkdir(): EntryReply {
    throw new FuseErrno('EPERM', 'the mount is a flat directory of databases');
  }

  symlink(): EntryReply {
    throw new FuseErrno('EPERM');
  }

  link(): EntryReply {
    throw new FuseErrno('EPERM');
  }

  // ------------------------------------------------------------------ files

  async open(_ctx: RequestContext, ino: bigint, _req: OpenRequest): Promise<OpenReply> {
    const p = this.nodeName(ino);
    if (p.kind === 'database' && this.store.db(p.db)?.exists !== true) {
      // The kernel still knew this name while the store forgot a file that
      // never became a database (it was empty): for the opener that is the
      // same empty file, so give it one again.
      if (!this.store.isPrimary) throw new FuseErrno('ENOENT');
      await guard(() => this.store.createDB(p.db));
    }
    this.opened(p);
    return this.openReplyFor(p);
  }

  private openReplyFor(p: ParsedName): OpenReply {
    // Real files keep the kernel's page cache across opens (warm reads
    // never reach us); virtual files are generated on every read. No FLUSH
    // on close: the kernel drops a process's locks itself, and nothing
    // else happens at close.
    if (p.kind !== 'primary' && p.kind !== 'lag' && REAL_KINDS.has(p.kind)) return { keepCache: true, noFlush: true };
    return { directIo: true, noFlush: true };
  }

  private opened(p: ParsedName): void {
    if (p.kind === 'database') this.opens.set(p.db, (this.opens.get(p.db) ?? 0) + 1);
  }

  async read(_ctx: RequestContext, ino: bigint, req: ReadRequest): Promise<Uint8Array> {
    const p = this.nodeName(ino);
    const off = Number(req.offset);
    switch (p.kind) {
      case 'primary': {
        const host = this.status.primaryHostname();
        if (host === null) throw new FuseErrno('ENOENT');
        return slice(primaryFileContent(host), off, req.size);
      }
      case 'lag':
        return slice(lagFileContent(this.status.lagMs()), off, req.size);
      case 'pos': {
        const { db } = this.dbOf(ino);
        return slice(posFileContent(db.pos), off, req.size);
      }
      case 'database':
        return guard(() => this.dbOf(ino).db.readDatabase(req.size, off));
      case 'journal':
        return guard(() => this.dbOf(ino).db.readJournal(req.size, off));
      case 'wal':
        return guard(() => this.dbOf(ino).db.readWal(req.size, off));
      case 'shm':
        return guard(() => this.dbOf(ino).db.readShm(req.size, off));
      default:
        throw new FuseErrno('ENOENT');
    }
  }

  async write(_ctx: RequestContext, ino: bigint, req: WriteRequest): Promise<number> {
    const { db, kind } = this.dbOf(ino);
    const off = Number(req.offset);
    switch (kind) {
      case 'database':
        if (db.pos.txid === 0n && db.pageSize === 0 && off === 0) this.checkFirstWrite(db.name, req.data);
        await guard(() => db.writeDatabase(off, req.data));
        break;
      case 'journal':
        await guard(() => db.writeJournal(off, req.data));
        break;
      case 'wal':
        await guard(() => db.writeWal(off, req.data));
        break;
      case 'shm':
        await guard(() => db.writeShm(off, req.data));
        break;
      default:
        throw new FuseErrno('EPERM', 'virtual files are read-only');
    }
    return req.data.length;
  }

  /**
   * Only SQLite databases can live in the mount: a file whose first write
   * is not a SQLite header (an editor's temp file, `echo > notes.txt`) is
   * refused and disappears when it is closed.
   */
  private checkFirstWrite(name: string, data: Uint8Array): void {
    const magic = Buffer.from('SQLite format 3\0');
    if (data.length >= 16 && Buffer.from(data.buffer, data.byteOffset, 16).equals(magic)) return;
    if (!this.warnedNotSQLite.has(name)) {
      this.warnedNotSQLite.add(name);
      this.log.warn(
        { name },
        'refusing a write: not a SQLite database (its first bytes are not the SQLite header); only SQLite databases can be stored in the mount',
      );
    }
    throw new FuseErrno('EINVAL', `${name}: not a SQLite database`);
  }

  async release(_ctx: RequestContext, ino: bigint, _req: ReleaseRequest): Promise<void> {
    const p = this.inodes.entry(ino);
    if (p?.kind !== 'database') return;
    const n = (this.opens.get(p.db) ?? 1) - 1;
    if (n > 0) {
      this.opens.set(p.db, n);
      return;
    }
    this.opens.delete(p.db);
    if (await this.store.discardIfNeverCommitted(p.db)) {
      this.warnedNotSQLite.delete(p.db);
      // Not awaited: this request is about a name in that very directory.
      void this.entriesChanged(p.db);
    }
  }

  async fsync(_ctx: RequestContext, ino: bigint, req: FsyncRequest): Promise<void> {
    const { db, kind } = this.dbOf(ino);
    switch (kind) {
      case 'database':
        return db.syncDatabase(req.datasync);
      case 'journal':
        return db.syncJournal(req.datasync);
      case 'wal':
        return db.syncWal(req.datasync);
      case 'shm':
        return db.syncShm(req.datasync);
      default:
        return;
    }
  }

  // -------------------------------------------------------------- directory

  async readdir(_ctx: RequestContext, ino: bigint, req: ReaddirRequest): Promise<readonly DirEntry[]> {
    if (ino !== ROOT_INO) throw new FuseErrno('ENOTDIR');
    const all: DirEntry[] = [
      { name: '.', ino: ROOT_INO, mode: S_IFDIR },
      { name: '..', ino: ROOT_INO, mode: S_IFDIR },
      { name: '.lag', ino: LAG_INO, mode: S_IFREG },
    ];
    if (this.status.primaryHostname() !== null) all.push({ name: '.primary', ino: PRIMARY_INO, mode: S_IFREG });
    for (const db of this.store.databases()) {
      // Deleted databases, and files that never became one, are hidden.
      if (!db.exists || db.pos.txid === 0n || db.deleted) continue;
      const add = (kind: FileKind): void => {
        all.push({ name: fileName(db.name, kind), ino: this.inodes.ino(kind, db.name), mode: S_IFREG });
      };
      add('database');
      if (db.journalExists) add('journal');
      if (db.walExists) add('wal');
      if (db.shmExists) add('shm');
      add('pos');
    }
    return all.slice(Number(req.offset));
  }

  async statfs(): Promise<StatfsReply> {
    const s = await statfs(this.store.layout.dataDir, { bigint: true });
    return {
      blocks: s.blocks,
      bfree: s.bfree,
      bavail: s.bavail,
      files: s.files,
      ffree: s.ffree,
      bsize: Number(s.bsize),
      frsize: Number(s.bsize),
      namelen: 255,
    };
  }

  // ------------------------------------------------------ cache invalidation

  async databaseChanged(db: string, ranges: readonly ByteRange[] | 'all'): Promise<void> {
    const ino = this.inodes.peek('database', db);
    const mount = this.mount;
    if (ino === undefined || mount === null) return;
    const list = ranges === 'all' ? [{ offset: 0, length: 0 }] : ranges;
    // Awaited by the apply (which keeps SQLite clients out until then); the
    // writes go through the pool, never blocking the thread that answers
    // READs the kernel may be waiting on.
    await Promise.all(
      list.map((r) =>
        mount.notifyInvalInode(ino, BigInt(r.offset), BigInt(r.length)).catch((err: unknown) => {
          this.log.warn({ err, db }, 'kernel cache invalidation failed');
        }),
      ),
    );
  }

  positionChanged(db: string): void {
    const ino = this.inodes.peek('pos', db);
    if (ino !== undefined) this.notify(() => this.mount?.notifyInvalInode(ino, -1n, 0n));
  }

  walChanged(db: string): void {
    const ino = this.inodes.peek('wal', db);
    if (ino !== undefined) this.notify(() => this.mount?.notifyInvalInode(ino, 0n, 0n));
  }

  async entriesChanged(db: string): Promise<void> {
    const mount = this.mount;
    if (mount === null) return;
    const names = (['database', 'journal', 'wal', 'shm', 'pos'] as const).map((kind) => fileName(db, kind));
    await Promise.all([...names.map((name) => mount.notifyInvalEntry(ROOT_INO, name)), mount.notifyInvalInode(ROOT_INO, -1n, 0n)]).catch(
      (err: unknown) => this.log.warn({ err }, 'kernel cache invalidation failed'),
    );
  }

  /** `.primary` appeared, disappeared or changed; the root's mode follows the role. */
  primaryChanged(): void {
    this.notify(() => this.mount?.notifyInvalEntry(ROOT_INO, '.primary'));
    this.notify(() => this.mount?.notifyInvalInode(PRIMARY_INO, -1n, 0n));
    this.notify(() => this.mount?.notifyInvalInode(ROOT_INO, -1n, 0n));
    // File modes (0666 on the primary, 0444 on replicas) are cached too.
    for (const db of this.store.databases()) {
      for (const kind of ['database', 'journal', 'wal'] as const) {
        const ino = this.inodes.peek(kind, db.name);
        if (ino !== undefined) this.notify(() => this.mount?.notifyInvalInode(ino, -1n, 0n));
      }
    }
  }

  private notify(send: () => Promise<boolean> | undefined): void {
    // Never awaited: the kernel may be waiting on one of our own replies
    // while it processes an invalidation.
    send()?.catch((err: unknown) => this.log.warn({ err }, 'kernel cache invalidation failed'));
  }
}

function negative(): EntryReply {
  return { nodeid: 0n, entryTimeoutSec: NEGATIVE_TTL };
}

function slice(buf: Buffer, offset: number, size: number): Buffer {
  return offset >= buf.length ? Buffer.alloc(0) : buf.subarray(offset, offset + size);
}

function fileAttr(ino: bigint, st: Stats | null, perm: number): Attr | null {
  if (st === null) return null;
  return {
    ino,
    size: BigInt(st.size),
    blocks: BigInt(st.blocks),
    atimeNs: BigInt(Math.round(st.atimeMs * 1e6)),
    mtimeNs: BigInt(Math.round(st.mtimeMs * 1e6)),
    ctimeNs: BigInt(Math.round(st.ctimeMs * 1e6)),
    mode: S_IFREG | perm,
    nlink: 1,
    uid: st.uid,
    gid: st.gid,
  };
}

/** Runs a store call, turning its typed errors into errnos for the kernel. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFuseError(err);
  }
}
