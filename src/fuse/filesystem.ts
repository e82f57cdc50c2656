import type { RequestContext } from './session/context.js';
import type { InitAdjust, InitInfo } from './session/negotiate.js';
import type {
  AttrReply,
  CreateReply,
  CreateRequest,
  DirEntry,
  DirEntryPlus,
  EntryReply,
  FallocateRequest,
  FileLock,
  FlushRequest,
  FsyncRequest,
  LockRequest,
  MaybePromise,
  MkdirRequest,
  MknodRequest,
  OpenReply,
  OpenRequest,
  ReaddirRequest,
  ReadRequest,
  ReleasedirRequest,
  ReleaseRequest,
  SetattrRequest,
  StatfsReply,
  WriteRequest,
} from './types.js';

/**
 * A filesystem served over FUSE. Every method is optional; a missing one
 * answers as the table below says, which for most means ENOSYS (the kernel
 * then stops sending that request). Handlers may return a value or a
 * promise. To fail with a specific errno, throw `FuseErrno` (or let a Node
 * system error with an errno `code` propagate); anything else answers EIO
 * and is logged once. Handlers run concurrently: a slow one never delays
 * others, so shared state needs the usual async care.
 *
 * Defaults when a method is absent: open/opendir → fh 0, no flags;
 * release/releasedir → success; statfs → zeros (namelen 255);
 * forget → nothing; everything else → ENOSYS.
 *
 * Node ids: 1n is the root. The session counts lookups per node id
 * (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK and READDIRPLUS replies with a
 * non-zero node id, on a successful reply write) and subtracts on FORGET;
 * `forget` reports each decrement and `FuseSession.lookupCount` the total.
 */
export interface FuseFilesystem {
  /** Called on the kernel's INIT, before replying; may adjust requested capabilities and limits. */
  init?(info: InitInfo): MaybePromise<InitAdjust | void>;
  /** Called on DESTROY and when the session ends without one (at most once). */
  destroy?(): MaybePromise<void>;

  /** Resolve `name` in directory `parent`. Return `{ nodeid: 0n, entryTimeoutSec }` to cache "not found". */
  lookup?(ctx: RequestContext, parent: bigint, name: string): MaybePromise<EntryReply>;
  /** The kernel dropped `nlookup` references to `nodeid`; `remaining` is what is left (0 → forgotten). No reply. */
  forget?(nodeid: bigint, nlookup: bigint, remaining: bigint): void;
  getattr?(ctx: RequestContext, nodeid: bigint, fh: bigint | undefined): MaybePromise<AttrReply>;
  setattr?(ctx: RequestContext, nodeid: bigint, req: SetattrRequest): MaybePromise<AttrReply>;
  readlink?(ctx: RequestContext, nodeid: bigint): MaybePromise<string | Uint8Array>;
  symlink?(ctx: RequestContext, parent: bigint, name: string, target: string): MaybePromise<EntryReply>;
  mknod?(ctx: RequestContext, parent: bigint, name: string, req: MknodRequest): MaybePromise<EntryReply>;
  mkdir?(ctx: RequestContext, parent: bigint, name: string, req: MkdirRequest): MaybePromise<EntryReply>;
  unlink?(ctx: RequestContext, parent: bigint, name: string): MaybePromise<void>;
  rmdir?(ctx: RequestContext, parent: bigint, name: string): MaybePromise<void>;
  /**
   * RENAME (flags 0) and RENAME2 (RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT).
   * Throw EINVAL for flags you do not support; ENOSYS would make the kernel
   * stop sending RENAME2 altogether (it then answers EINVAL itself).
   */
  rename?(ctx: RequestContext, parent: bigint, name: string, newParent: bigint, newName: string, flags: number): MaybePromise<void>;
  link?(ctx: RequestContext, nodeid: bigint, newParent: bigint, newName: string): MaybePromise<EntryReply>;

  open?(ctx: RequestContext, nodeid: bigint, req: OpenRequest): MaybePromise<OpenReply>;
  create?(ctx: RequestContext, parent: bigint, name: string, req: CreateRequest): MaybePromise<CreateReply>;
  /** Return at most `req.size` bytes; fewer means end of file (or a short direct-I/O read). */
  read?(ctx: RequestContext, nodeid: bigint, req: ReadRequest): MaybePromise<Uint8Array>;
  /** Return the number of bytes written. */
  write?(ctx: RequestContext, nodeid: bigint, req: WriteRequest): MaybePromise<number>;
  /** On every close(2) of a descriptor: with POSIX locks, release `req.lockOwner`'s locks on this node here. */
  flush?(ctx: RequestContext, nodeid: bigint, req: FlushRequest): MaybePromise<void>;
  /** When the last reference to an open file goes away (OFD locks taken through `fh` die here). */
  release?(ctx: RequestContext, nodeid: bigint, req: ReleaseRequest): MaybePromise<void>;
  fsync?(ctx: RequestContext, nodeid: bigint, req: FsyncRequest): MaybePromise<void>;
  fallocate?(ctx: RequestContext, nodeid: bigint, req: FallocateRequest): MaybePromise<void>;

  opendir?(ctx: RequestContext, nodeid: bigint, req: OpenRequest): MaybePromise<OpenReply>;
  /**
   * Entries starting at `req.offset` (0 = beginning; otherwise an offset
   * cookie from an earlier entry). Return as many as convenient: those that
   * do not fit in `req.size` are dropped and asked for again. An empty list
   * ends the listing.
   */
  readdir?(ctx: RequestContext, nodeid: bigint, req: ReaddirRequest): MaybePromise<readonly DirEntry[]>;
  /** Enables READDIRPLUS when present. Entries other than "." and ".." with a non-zero nodeid count as lookups. */
  readdirplus?(ctx: RequestContext, nodeid: bigint, req: ReaddirRequest): MaybePromise<readonly DirEntryPlus[]>;
  releasedir?(ctx: RequestContext, nodeid: bigint, req: ReleasedirRequest): MaybePromise<void>;
  fsyncdir?(ctx: RequestContext, nodeid: bigint, req: FsyncRequest): MaybePromise<void>;

  statfs?(ctx: RequestContext, nodeid: bigint): MaybePromise<StatfsReply>;
  access?(ctx: RequestContext, nodeid: bigint, mask: number): MaybePromise<void>;

  /**
   * F_GETLK: return a lock that conflicts with `req.lock`, or null when it
   * could be taken. Having getlk or setlk requests the posixLocks capability.
   */
  getlk?(ctx: RequestContext, nodeid: bigint, req: LockRequest): MaybePromise<FileLock | null>;
  /**
   * F_SETLK (`wait` false: throw EAGAIN on conflict) and F_SETLKW (`wait`
   * true: wait until it can be taken; `ctx.signal` aborts when the caller
   * is interrupted, then throw EINTR). `req.lock.type` 'unlock' releases.
   */
  setlk?(ctx: RequestContext, nodeid: bigint, req: LockRequest, wait: boolean): MaybePromise<void>;
}
