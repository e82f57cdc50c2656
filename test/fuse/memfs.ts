import { constants as C } from 'node:fs';
import fsp from 'node:fs/promises';
import {
  FuseErrno,
  RENAME_FLAGS,
  type Attr,
  type AttrReply,
  type CreateReply,
  type CreateRequest,
  type DirEntryPlus,
  type EntryReply,
  type FileLock,
  type FlushRequest,
  type FuseFilesystem,
  type FuseMount,
  type LockRequest,
  type MkdirRequest,
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
} from '../../src/fuse/index.js';
import { LockTable } from './locks.js';

/** Kernel page-cache policy for a file's opens. */
export type CacheMode = 'keep' | 'direct' | 'none';

export interface MemNode {
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** File bytes are data[0, size). */
  data: Buffer;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  children?: Map<string, bigint>;
  parent: bigint;
  target?: string;
  cache: CacheMode;
  openCount: number;
}

export interface MemFsOptions {
  entryTimeoutSec?: number;
  attrTimeoutSec?: number;
  /** > 0: a missing name is answered as a negative entry cached this long. */
  negativeTimeoutSec?: number;
  /** Serve READDIRPLUS (default false). */
  readdirplus?: boolean;
  defaultCache?: CacheMode;
  /**
   * A real file: CREATE and OPEN stat it, every READ and WRITE also reads or
   * writes it at the same offset through fs.promises (open, I/O, close).
   * Served data still comes from memory; the point is that each of these
   * requests needs libuv pool threads, so a starved pool hangs them.
   */
  ioFile?: string;
}

/** Called before a READ is served; may wait (e.g. for ctx.signal) or throw. */
export type ReadHook = (ctx: RequestContext, node: MemNode, req: ReadRequest) => Promise<void> | void;

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * An in-memory filesystem for the FUSE tests: regular files, directories,
 * symlinks, POSIX locks, and hooks to change state behind the kernel's back.
 */
export class MemFs implements FuseFilesystem {
  readonly nodes = new Map<bigint, MemNode>();
  readonly locks = new LockTable();
  /** LOOKUP calls per name, to observe kernel dentry caching. */
  readonly lookupCalls = new Map<string, number>();
  readonly forgets: { nodeid: bigint; nlookup: bigint; remaining: bigint }[] = [];
  readonly readHooks = new Map<bigint, ReadHook>();
  /** Requests seen per operation name. */
  readonly ops = new Map<string, number>();
  /** Largest WRITE payload seen. */
  maxWriteSeen = 0;
  /** fs.promises operations done on `ioFile`. */
  fileIoOps = 0;
  mount: FuseMount | undefined;
  private nextIno = 2n;
  private nextFh = 1n;
  private readonly opts: Required<Omit<MemFsOptions, 'ioFile'>>;
  private readonly ioFile: string | undefined;

  constructor(opts: MemFsOptions = {}) {
    this.opts = {
      entryTimeoutSec: opts.entryTimeoutSec ?? 1,
      attrTimeoutSec: opts.attrTimeoutSec ?? 1,
      negativeTimeoutSec: opts.negativeTimeoutSec ?? 0,
      readdirplus: opts.readdirplus ?? false,
      defaultCache: opts.defaultCache ?? 'keep',
    };
    this.ioFile = opts.ioFile;
    const t = nowNs();
    this.nodes.set(1n, {
      ino: 1n,
      mode: C.S_IFDIR | 0o755,
      uid: 0,
      gid: 0,
      nlink: 2,
      data: Buffer.alloc(0),
      size: 0,
      atimeNs: t,
      mtimeNs: t,
      ctimeNs: t,
      children: new Map(),
      parent: 1n,
      cache: 'none',
      openCount: 0,
    });
    if (this.opts.readdirplus) {
      (this as FuseFilesystem).readdirplus = (ctx, nodeid, req) => this.readdirplusImpl(ctx, nodeid, req);
    }
  }

  // ---- test helpers (not FUSE requests) ----

  /** Resolves a slash-separated path from the root. */
  resolve(path: string): MemNode {
    let node = this.node(1n);
    for (const part of path.split('/').filter((p) => p !== '')) {
      const child = node.children?.get(part);
      if (child === undefined) throw new Error(`memfs: no ${path}`);
      node = this.node(child);
    }
    return node;
  }

  /** Creates (or replaces the content of) a file, and missing parent directories, without telling the kernel. */
  writeFile(path: string, content: string | Buffer, opts: { cache?: CacheMode; mode?: number } = {}): MemNode {
    const parts = path.split('/').filter((p) => p !== '');
    const name = parts.pop()!;
    const dir = this.mkdirp(parts.join('/'));
    const existing = dir.children!.get(name);
    const node = existing !== undefined ? this.node(existing) : this.newNode(dir.ino, C.S_IFREG | (opts.mode ?? 0o644));
    if (existing === undefined) dir.children!.set(name, node.ino);
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    node.data = Buffer.from(bytes);
    node.size = bytes.length;
    if (opts.cache) node.cache = opts.cache;
    node.mtimeNs = node.ctimeNs = nowNs();
    return node;
  }

  /** Overwrites bytes in place (size unchanged unless extended) without telling the kernel. */
  patchFile(path: string, offset: number, bytes: Buffer): MemNode {
    const node = this.resolve(path);
    this.writeAt(node, offset, bytes);
    return node;
  }

  mkdirp(path: string): MemNode {
    let node = this.node(1n);
    for (const part of path.split('/').filter((p) => p !== '')) {
      let child = node.children!.get(part);
      if (child === undefined) {
        const n = this.newNode(node.ino, C.S_IFDIR | 0o755);
        n.nlink = 2;
        node.children!.set(part, n.ino);
        node.nlink++;
        child = n.ino;
      }
      node = this.node(child);
    }
    return node;
  }

  content(path: string): Buffer {
    const n = this.resolve(path);
    return Buffer.from(n.data.subarray(0, n.size));
  }

  // ---- FUSE operations ----

  lookup(_ctx: RequestContext, parent: bigint, name: string): EntryReply {
    this.count('lookup');
    this.lookupCalls.set(name, (this.lookupCalls.get(name) ?? 0) + 1);
    const dir = this.dir(parent);
    const ino = dir.children!.get(name);
    if (ino === undefined) {
      if (this.opts.negativeTimeoutSec > 0) return { nodeid: 0n, entryTimeoutSec: this.opts.negativeTimeoutSec };
      throw new FuseErrno('ENOENT');
    }
    return this.entry(this.node(ino));
  }

  forget(nodeid: bigint, nlookup: bigint, remaining: bigint): void {
    this.forgets.push({ nodeid, nlookup, remaining });
    const n = this.nodes.get(nodeid);
    if (n && remaining === 0n && n.nlink === 0 && n.openCount === 0) this.nodes.delete(nodeid);
  }

  getattr(_ctx: RequestContext, nodeid: bigint): AttrReply {
    this.count('getattr');
    return { attr: this.attr(this.node(nodeid)), attrTimeoutSec: this.opts.attrTimeoutSec };
  }

  setattr(_ctx: RequestContext, nodeid: bigint, req: SetattrRequest): AttrReply {
    this.count('setattr');
    const n = this.node(nodeid);
    const t = nowNs();
    if (req.size !== undefined) {
      if ((n.mode & C.S_IFMT) === C.S_IFDIR) throw new FuseErrno('EISDIR');
      this.resize(n, Number(req.size));
      n.mtimeNs = t;
    }
    if (req.mode !== undefined) n.mode = (n.mode & C.S_IFMT) | (req.mode & 0o7777);
    if (req.uid !== undefined) n.uid = req.uid;
    if (req.gid !== undefined) n.gid = req.gid;
    if (req.atimeNs !== undefined) n.atimeNs = req.atimeNs === 'now' ? t : req.atimeNs;
    if (req.mtimeNs !== undefined) n.mtimeNs = req.mtimeNs === 'now' ? t : req.mtimeNs;
    n.ctimeNs = req.ctimeNs ?? t;
    return { attr: this.attr(n), attrTimeoutSec: this.opts.attrTimeoutSec };
  }

  readlink(_ctx: RequestContext, nodeid: bigint): string {
    const n = this.node(nodeid);
    if (n.target === undefined) throw new FuseErrno('EINVAL');
    return n.target;
  }

  symlink(_ctx: RequestContext, parent: bigint, name: string, target: string): EntryReply {
    const n = this.addChild(parent, name, C.S_IFLNK | 0o777);
    n.target = target;
    n.size = Buffer.byteLength(target);
    return this.entry(n);
  }

  mknod(_ctx: RequestContext, parent: bigint, name: string, req: MknodRequest): EntryReply {
    if ((req.mode & C.S_IFMT) !== C.S_IFREG) throw new FuseErrno('EPERM', 'memfs: only regular files');
    return this.entry(this.addChild(parent, name, req.mode));
  }

  mkdir(_ctx: RequestContext, parent: bigint, name: string, req: MkdirRequest): EntryReply {
    const n = this.addChild(parent, name, C.S_IFDIR | (req.mode & 0o7777));
    n.nlink = 2;
    this.node(parent).nlink++;
    return this.entry(n);
  }

  unlink(_ctx: RequestContext, parent: bigint, name: string): void {
    this.count('unlink');
    const dir = this.dir(parent);
    const ino = dir.children!.get(name);
    if (ino === undefined) throw new FuseErrno('ENOENT');
    const n = this.node(ino);
    if ((n.mode & C.S_IFMT) === C.S_IFDIR) throw new FuseErrno('EISDIR');
    dir.children!.delete(name);
    this.dropLink(n);
  }

  rmdir(_ctx: RequestContext, parent: bigint, name: string): void {
    const dir = this.dir(parent);
    const ino = dir.children!.get(name);
    if (ino === undefined) throw new FuseErrno('ENOENT');
    const n = this.node(ino);
    if (!n.children) throw new FuseErrno('ENOTDIR');
    if (n.children.size > 0) throw new FuseErrno('ENOTEMPTY');
    dir.children!.delete(name);
    dir.nlink--;
    n.nlink = 0;
    this.dropLink(n);
  }

  rename(_ctx: RequestContext, parent: bigint, name: string, newParent: bigint, newName: string, flags: number): void {
    this.count('rename');
    if (flags & ~(RENAME_FLAGS.NOREPLACE | RENAME_FLAGS.EXCHANGE)) throw new FuseErrno('EINVAL');
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const ino = from.children!.get(name);
    if (ino === undefined) throw new FuseErrno('ENOENT');
    const existing = to.children!.get(newName);
    if (flags & RENAME_FLAGS.EXCHANGE) {
      if (existing === undefined) throw new FuseErrno('ENOENT');
      from.children!.set(name, existing);
      to.children!.set(newName, ino);
      return;
    }
    if (existing !== undefined) {
      if (flags & RENAME_FLAGS.NOREPLACE) throw new FuseErrno('EEXIST');
      const victim = this.node(existing);
      if (victim.children && victim.children.size > 0) throw new FuseErrno('ENOTEMPTY');
      this.dropLink(victim);
    }
    from.children!.delete(name);
    to.children!.set(newName, ino);
    this.node(ino).parent = newParent;
  }

  open(_ctx: RequestContext, nodeid: bigint, _req: OpenRequest): OpenReply | Promise<OpenReply> {
    this.count('open');
    const n = this.node(nodeid);
    const reply = (): OpenReply => {
      n.openCount++;
      return { fh: this.nextFh++, ...this.cacheFlags(n) };
    };
    return this.ioFile === undefined ? reply() : this.statIoFile().then(reply);
  }

  create(_ctx: RequestContext, parent: bigint, name: string, req: CreateRequest): CreateReply | Promise<CreateReply> {
    this.count('create');
    if (this.ioFile !== undefined) return this.statIoFile().then(() => this.createNow(parent, name, req));
    return this.createNow(parent, name, req);
  }

  private createNow(parent: bigint, name: string, req: CreateRequest): CreateReply {
    const dir = this.dir(parent);
    const existing = dir.children!.get(name);
    let n: MemNode;
    if (existing !== undefined) {
      if (req.flags & C.O_EXCL) throw new FuseErrno('EEXIST');
      n = this.node(existing);
      if (req.flags & C.O_TRUNC) this.resize(n, 0);
    } else n = this.addChild(parent, name, C.S_IFREG | (req.mode & 0o7777));
    n.openCount++;
    return { ...this.entry(n), fh: this.nextFh++, ...this.cacheFlags(n) };
  }

  async read(ctx: RequestContext, nodeid: bigint, req: ReadRequest): Promise<Uint8Array> {
    this.count('read');
    const n = this.node(nodeid);
    const hook = this.readHooks.get(nodeid);
    if (hook) await hook(ctx, n, req);
    const off = Number(req.offset);
    if (this.ioFile !== undefined) await this.fileIo(off, req.size);
    if (off >= n.size) return Buffer.alloc(0);
    return Buffer.from(n.data.subarray(off, Math.min(n.size, off + req.size)));
  }

  write(_ctx: RequestContext, nodeid: bigint, req: WriteRequest): number | Promise<number> {
    this.count('write');
    this.maxWriteSeen = Math.max(this.maxWriteSeen, req.data.length);
    const n = this.node(nodeid);
    const off = req.flags & C.O_APPEND && !req.cached ? n.size : Number(req.offset);
    this.writeAt(n, off, req.data);
    if (this.ioFile !== undefined) return this.fileIo(off, req.data).then(() => req.data.length);
    return req.data.length;
  }

  flush(_ctx: RequestContext, nodeid: bigint, req: FlushRequest): void {
    this.count('flush');
    this.locks.releaseOwner(nodeid, req.lockOwner);
  }

  release(_ctx: RequestContext, nodeid: bigint, req: ReleaseRequest): void {
    this.count('release');
    this.locks.releaseFh(nodeid, req.fh);
    const n = this.nodes.get(nodeid);
    if (!n) return;
    n.openCount = Math.max(0, n.openCount - 1);
    if (n.nlink === 0 && n.openCount === 0 && (this.mount?.lookupCount(nodeid) ?? 0n) === 0n) this.nodes.delete(nodeid);
  }

  fsync(): void {
    this.count('fsync');
  }

  opendir(_ctx: RequestContext, nodeid: bigint): OpenReply {
    this.dir(nodeid);
    return { fh: 0n };
  }

  readdir(_ctx: RequestContext, nodeid: bigint, req: ReaddirRequest): DirEntryPlus[] {
    return this.listing(nodeid).slice(Number(req.offset));
  }

  statfs(): StatfsReply {
    return {
      blocks: 1_000_000n,
      bfree: 500_000n,
      bavail: 500_000n,
      files: 1000n,
      ffree: 1000n - BigInt(this.nodes.size),
      bsize: 4096,
      namelen: 255,
    };
  }

  access(): void {}

  getlk(_ctx: RequestContext, nodeid: bigint, req: LockRequest): FileLock | null {
    this.count('getlk');
    return this.locks.getlk(nodeid, req);
  }

  setlk(ctx: RequestContext, nodeid: bigint, req: LockRequest, wait: boolean): Promise<void> {
    this.count(wait ? 'setlkw' : 'setlk');
    return this.locks.setlk(nodeid, req, wait, wait ? ctx.signal : undefined);
  }

  // ---- internals ----

  private async statIoFile(): Promise<void> {
    this.fileIoOps++;
    await fsp.stat(this.ioFile!);
  }

  /** Reads `what` bytes (a number) or writes `what` (a buffer) at `offset` of ioFile. */
  private async fileIo(offset: number, what: number | Buffer): Promise<void> {
    this.fileIoOps++;
    const fh = await fsp.open(this.ioFile!, 'r+');
    try {
      if (typeof what === 'number') await fh.read(Buffer.alloc(Math.min(what, 1 << 20)), 0, Math.min(what, 1 << 20), offset);
      else await fh.write(what, 0, what.length, offset);
    } finally {
      await fh.close();
    }
  }

  private readdirplusImpl(_ctx: RequestContext, nodeid: bigint, req: ReaddirRequest): DirEntryPlus[] {
    this.count('readdirplus');
    return this.listing(nodeid).slice(Number(req.offset));
  }

  private listing(nodeid: bigint): DirEntryPlus[] {
    const dir = this.dir(nodeid);
    const parent = this.node(dir.parent);
    const out: DirEntryPlus[] = [
      { name: '.', ino: dir.ino, mode: dir.mode, entry: { nodeid: 0n } },
      { name: '..', ino: parent.ino, mode: parent.mode, entry: { nodeid: 0n } },
    ];
    for (const [name, ino] of dir.children!) {
      const n = this.node(ino);
      out.push({ name, ino, mode: n.mode, entry: this.entry(n) });
    }
    return out.map((e, i) => ({ ...e, nextOffset: BigInt(i + 1) }));
  }

  private count(op: string): void {
    this.ops.set(op, (this.ops.get(op) ?? 0) + 1);
  }

  private cacheFlags(n: MemNode): OpenReply {
    if (n.cache === 'keep') return { keepCache: true };
    if (n.cache === 'direct') return { directIo: true };
    return {};
  }

  private node(ino: bigint): MemNode {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseErrno('ENOENT', `memfs: no inode ${ino}`);
    return n;
  }

  private dir(ino: bigint): MemNode {
    const n = this.node(ino);
    if (!n.children) throw new FuseErrno('ENOTDIR');
    return n;
  }

  private newNode(parent: bigint, mode: number): MemNode {
    const t = nowNs();
    const n: MemNode = {
      ino: this.nextIno++,
      mode,
      uid: 0,
      gid: 0,
      nlink: 1,
      data: Buffer.alloc(0),
      size: 0,
      atimeNs: t,
      mtimeNs: t,
      ctimeNs: t,
      parent,
      cache: this.opts.defaultCache,
      openCount: 0,
    };
    if ((mode & C.S_IFMT) === C.S_IFDIR) n.children = new Map();
    this.nodes.set(n.ino, n);
    return n;
  }

  private addChild(parent: bigint, name: string, mode: number): MemNode {
    const dir = this.dir(parent);
    if (dir.children!.has(name)) throw new FuseErrno('EEXIST');
    const n = this.newNode(parent, mode);
    dir.children!.set(name, n.ino);
    dir.mtimeNs = dir.ctimeNs = nowNs();
    return n;
  }

  private dropLink(n: MemNode): void {
    n.nlink = Math.max(0, n.nlink - 1);
    n.ctimeNs = nowNs();
    if (n.nlink === 0 && n.openCount === 0 && (this.mount?.lookupCount(n.ino) ?? 0n) === 0n) this.nodes.delete(n.ino);
  }

  private resize(n: MemNode, size: number): void {
    if (size > n.data.length) {
      const grown = Buffer.alloc(Math.max(size, n.data.length * 2));
      n.data.copy(grown, 0, 0, n.size);
      n.data = grown;
    } else if (size < n.size) n.data.fill(0, size, n.size);
    n.size = size;
  }

  private writeAt(n: MemNode, off: number, bytes: Buffer): void {
    const end = off + bytes.length;
    if (end > n.size) this.resize(n, end);
    bytes.copy(n.data, off);
    n.mtimeNs = n.ctimeNs = nowNs();
  }

  private entry(n: MemNode): EntryReply {
    return { nodeid: n.ino, attr: this.attr(n), entryTimeoutSec: this.opts.entryTimeoutSec, attrTimeoutSec: this.opts.attrTimeoutSec };
  }

  private attr(n: MemNode): Attr {
    return {
      ino: n.ino,
      size: BigInt(n.size),
      atimeNs: n.atimeNs,
      mtimeNs: n.mtimeNs,
      ctimeNs: n.ctimeNs,
      mode: n.mode,
      nlink: n.nlink,
      uid: n.uid,
      gid: n.gid,
    };
  }
}
