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
  type FileLock,
  type FlushRequest,
  type FsyncRequest,
  type FuseFilesystem,
  type FuseMount,
  type InitAdjust,
  type LockRequest,
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
import type { Logger } from '../internal/log.js';
import type { ByteRange, CacheInvalidator, DB, Store } from '../store/index.js';
import { LAG_INO, PRIMARY_INO, ROOT_INO, InodeTable } from './inodes.js';
import { fileName, parseName, type FileKind, type ParsedName } from './names.js';
import { lagFileContent, posFileContent, primaryFileContent } from './virtual-files.js';
import { toFuseError } from './errno.js';
import { LockHandler } from './locks.js';

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

// The kernel may cache names and attributes: every change that does not go
// through the kernel (applies, drops, primary changes) is invalidated
// explicitly, so these only bound how long a missed invalidation could
// last. Negative entries matter most: SQLite looks for `-journal` at the
// start of every read transaction.
const ENTRY_TTL = 10;
const NEGATIVE_TTL = 10;
const ATTR_TTL = 1;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const W_OK = 2;

/**
 * The LiteFS filesystem: a flat root directory whose files are the
 * databases of the store, their journals, and a few virtual files, served
 * over FUSE. Database and journal I/O passes through to the files under the
 * data directory; every mutation goes through the store's DB object, which
 * keeps the page checksums and turns commits into LTX files.
 */
export class LiteFS implements FuseFilesystem, CacheInvalidator {
  private readonly store: Store;
  private readonly status: NodeStatus;
  private readonly log: Logger;
  private readonly inodes = new InodeTable();
  private readonly locks: LockHandler;
  private mount: FuseMount | null = null;
  private readonly startedNs = BigInt(Date.now()) * 1_000_000n;

  constructor(opts: LiteFSOptions) {
    this.store = opts.store;
    this.status = opts.status;
    this.log = opts.logger.child({ component: 'fs' });
    this.locks = new LockHandler();
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
    // SQLite's locks must reach us (posixLocks), and the page cache must only
    // be dropped when we say so (explicitInvalData): that is what lets warm
    // reads stay in the kernel. The session never requests writeback
    // caching, so writes arrive one by one, in order.
    return { enable: ['posixLocks', 'explicitInvalData'] };
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
    return p.kind === 'database' || p.kind === 'journal' ? ATTR_TTL : 0;
  }

  /** Attributes of a name, or null when it does not exist right now. */
  private async attrOf(p: ParsedName): Promise<Attr | null> {
    const primary = this.store.isPrimary;
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
    switch (p.kind) {
      case 'database':
        return fileAttr(ino, await db.statDatabase(), primary ? 0o666 : 0o444);
      case 'journal':
        return db.journalExists ? fileAttr(ino, await db.statJournal(), 0o666) : null;
      case 'pos':
        return this.virtualAttr(ino, 0o666, 34, BigInt(db.timestamp) * 1_000_000n);
      case 'wal':
      case 'shm':
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

  async setattr(_ctx: RequestContext, ino: bigint, req: SetattrRequest): Promise<AttrReply> {
    if (ino === ROOT_INO) return { attr: this.rootAttr(), attrTimeoutSec: 0 };
    const p = this.nodeName(ino);
    if (req.size !== undefined) {
      if (p.kind === 'database' || p.kind === 'journal') {
        const { db } = this.dbOf(ino);
        await guard(() => (p.kind === 'database' ? db.truncateDatabase(Number(req.size)) : db.truncateJournal(Number(req.size))));
      } else {
        throw new FuseErrno('EPERM', 'virtual files cannot be resized');
      }
    }
    // Mode, owner and times are accepted and ignored: the store decides
    // them (SQLite running as root chowns every journal it creates).
    return this.getattr(_ctx, ino);
  }

  access(_ctx: RequestContext, ino: bigint, mask: number): void {
    if ((mask & W_OK) !== 0 && ino !== ROOT_INO && !this.store.isPrimary) {
      const p = this.nodeName(ino);
      if (p.kind === 'database' || p.kind === 'journal') throw new FuseErrno('EACCES');
    }
  }

  // ------------------------------------------------------ create and unlink

  async create(_ctx: RequestContext, parent: bigint, name: string, _req: CreateRequest): Promise<CreateReply> {
    const entry = await this.createFile(parent, name);
    return { ...entry, ...this.openReplyFor(this.nodeName(entry.nodeid)) };
  }

  async mknod(_ctx: RequestContext, parent: bigint, name: string, req: MknodRequest): Promise<EntryReply> {
    if ((req.mode & 0o170000) !== S_IFREG) throw new FuseErrno('EPERM', 'only regular files can be created here');
    return this.createFile(parent, name);
  }

  private async createFile(parent: bigint, name: string): Promise<EntryReply> {
    if (parent !== ROOT_INO) throw new FuseErrno('ENOENT');
    const p = parseName(name);
    if (p === null || p.kind === 'primary' || p.kind === 'lag' || p.kind === 'pos' || p.kind === 'lock') {
      throw new FuseErrno('EPERM', `${name}: only databases and their journals can be created here`);
    }
    if (!this.store.isPrimary) throw new FuseErrno('EACCES', 'read-only replica');
    if (p.kind === 'wal' || p.kind === 'shm') {
      this.log.error({ name }, 'refusing to create a WAL file: WAL journal mode is not supported yet');
      throw new FuseErrno('EOPNOTSUPP', 'WAL mode is not supported yet');
    }
    if (p.kind === 'database') {
      await guard(() => this.store.createDB(p.db));
    } else {
      const db = this.store.db(p.db);
      if (db === undefined || !db.exists) throw new FuseErrno('ENOENT');
      await guard(() => db.createJournal());
    }
    const entry = await this.entryFor(p);
    if (entry === null) throw new FuseErrno('EIO');
    return entry;
  }

  async unlink(_ctx: RequestContext, parent: bigint, name: string): Promise<void> {
    if (parent !== ROOT_INO) throw new FuseErrno('ENOENT');
    const p = parseName(name);
    if (p === null || p.kind === 'primary' || p.kind === 'lag') throw new FuseErrno('ENOENT');
    if (p.kind !== 'database' && p.kind !== 'journal') throw new FuseErrno('EPERM');
    const db = this.store.db(p.db);
    if (db === undefined || !db.exists || (p.kind === 'journal' && !db.journalExists)) throw new FuseErrno('ENOENT');
    if (!this.store.isPrimary) throw new FuseErrno('EACCES', 'read-only replica');
    await guard(() => (p.kind === 'journal' ? db.removeJournal() : db.drop()));
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

  open(_ctx: RequestContext, ino: bigint, _req: OpenRequest): OpenReply {
    return this.openReplyFor(this.nodeName(ino));
  }

  private openReplyFor(p: ParsedName): OpenReply {
    // Real files keep the kernel's page cache across opens (warm reads never
    // reach us); virtual files are generated on every read. Only database
    // files carry locks, so only their close needs a FLUSH (to drop them).
    if (p.kind === 'database') return { keepCache: true };
    return p.kind === 'journal' ? { keepCache: true, noFlush: true } : { directIo: true, noFlush: true };
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
      default:
        throw new FuseErrno('ENOENT');
    }
  }

  async write(_ctx: RequestContext, ino: bigint, req: WriteRequest): Promise<number> {
    const { db, kind } = this.dbOf(ino);
    const off = Number(req.offset);
    if (kind === 'database') await guard(() => db.writeDatabase(off, req.data));
    else if (kind === 'journal') await guard(() => db.writeJournal(off, req.data));
    else throw new FuseErrno('EPERM', 'virtual files are read-only');
    return req.data.length;
  }

  flush(_ctx: RequestContext, ino: bigint, req: FlushRequest): void {
    // POSIX: closing any descriptor drops the process's locks on the file.
    // The kernel does not send that unlock when it forwards locks, so we do it.
    const e = this.inodes.entry(ino);
    if (e?.kind === 'database') this.store.db(e.db)?.locks.releaseAll(req.lockOwner);
  }

  release(_ctx: RequestContext, _ino: bigint, _req: ReleaseRequest): void {}

  async fsync(_ctx: RequestContext, ino: bigint, req: FsyncRequest): Promise<void> {
    const { db, kind } = this.dbOf(ino);
    if (kind === 'database') await db.syncDatabase(req.datasync);
    else if (kind === 'journal') await db.syncJournal(req.datasync);
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
      // Deleted (zero-page) databases are hidden, as in LiteFS.
      if (!db.exists || (db.pageN === 0 && db.pos.txid > 0n)) continue;
      all.push({ name: db.name, ino: this.inodes.ino('database', db.name), mode: S_IFREG });
      if (db.journalExists) all.push({ name: fileName(db.name, 'journal'), ino: this.inodes.ino('journal', db.name), mode: S_IFREG });
      all.push({ name: fileName(db.name, 'pos'), ino: this.inodes.ino('pos', db.name), mode: S_IFREG });
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

  // ------------------------------------------------------------------ locks

  getlk(_ctx: RequestContext, ino: bigint, req: LockRequest): FileLock | null {
    return this.locks.getlk(this.lockTarget(ino), req);
  }

  setlk(ctx: RequestContext, ino: bigint, req: LockRequest, wait: boolean): Promise<void> | void {
    return this.locks.setlk(ctx, this.lockTarget(ino), req, wait);
  }

  private lockTarget(ino: bigint): DB {
    const { db, kind } = this.dbOf(ino);
    // SQLite locks only the database file in rollback mode.
    if (kind !== 'database') throw new FuseErrno('ENOLCK', 'locks are supported on database files only');
    return db;
  }

  // ------------------------------------------------------ cache invalidation

  async databaseChanged(db: string, ranges: readonly ByteRange[] | 'all'): Promise<void> {
    const ino = this.inodes.peek('database', db);
    const mount = this.mount;
    if (ino === undefined || mount === null) return;
    const list = ranges === 'all' ? [{ offset: 0, length: 0 }] : ranges;
    // Awaited by the apply (which holds the database write lock, so no
    // reader can race it); the writes go through the pool, never blocking
    // the thread that answers READs the kernel may be waiting on.
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

  entriesChanged(db: string): void {
    for (const kind of ['database', 'journal', 'pos'] as const) {
      this.notify(() => this.mount?.notifyInvalEntry(ROOT_INO, fileName(db, kind)));
    }
  }

  /** `.primary` appeared, disappeared or changed, and with the role the files' modes. */
  primaryChanged(): void {
    this.notify(() => this.mount?.notifyInvalEntry(ROOT_INO, '.primary'));
    this.notify(() => this.mount?.notifyInvalInode(PRIMARY_INO, -1n, 0n));
    this.notify(() => this.mount?.notifyInvalInode(ROOT_INO, -1n, 0n));
    // Databases and journals are 0444 on a replica and 0666 on the primary;
    // without this a new primary refused O_RDWR opens for up to ATTR_TTL.
    for (const db of this.store.databases()) {
      for (const kind of ['database', 'journal'] as const) {
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
