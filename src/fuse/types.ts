/**
 * Data types a filesystem exchanges with the session. 64-bit protocol
 * integers (node ids, file handles, offsets, sizes, lock owners, times) are
 * bigint; 32-bit ones (modes, ids, flags, counts) are number.
 */

/** File attributes (struct fuse_attr). Times are nanoseconds since the epoch. */
export interface Attr {
  ino: bigint;
  size: bigint;
  /** 512-byte blocks; defaults to ceil(size / 512). */
  blocks?: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** File type and permission bits (S_IFREG | 0o644, ...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  /** Preferred I/O size reported by stat(2); defaults to 4096. */
  blksize?: number;
  /** fuse_attr.flags (FUSE_ATTR_SUBMOUNT, ...); defaults to 0. */
  flags?: number;
}

/** Reply to GETATTR and SETATTR. */
export interface AttrReply {
  attr: Attr;
  /** How long the kernel may cache the attributes, in seconds (fractions allowed). Default 0. */
  attrTimeoutSec?: number;
}

/**
 * Reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK (and the entry part of CREATE
 * and READDIRPLUS). `nodeid: 0n` with an `entryTimeoutSec` is a negative
 * entry: the kernel caches "does not exist" for that long (LOOKUP only).
 */
export interface EntryReply {
  nodeid: bigint;
  /** nodeid:generation must be unique over the filesystem's lifetime. Default 0. */
  generation?: bigint;
  /** Required unless nodeid is 0. */
  attr?: Attr;
  entryTimeoutSec?: number;
  attrTimeoutSec?: number;
}

/** Reply to OPEN and OPENDIR: a file handle and per-open kernel cache policy. */
export interface OpenReply {
  /** Echoed back on every request for this open file. Default 0. */
  fh?: bigint;
  /** FOPEN_KEEP_CACHE: do not drop the inode's cached pages on this open. */
  keepCache?: boolean;
  /** FOPEN_DIRECT_IO: every read/write of this open goes to the filesystem (no page cache, no shared mmap). */
  directIo?: boolean;
  /** FOPEN_NONSEEKABLE */
  nonSeekable?: boolean;
  /** FOPEN_CACHE_DIR (OPENDIR only): the kernel may cache directory contents. */
  cacheDir?: boolean;
  /** FOPEN_STREAM: no file position at all. */
  stream?: boolean;
  /** FOPEN_NOFLUSH: no FLUSH on close. */
  noFlush?: boolean;
  /** FOPEN_PARALLEL_DIRECT_WRITES */
  parallelDirectWrites?: boolean;
}

/** Reply to CREATE: the new entry and its open file. */
export interface CreateReply extends EntryReply, OpenReply {}

/** Reply to STATFS (struct fuse_kstatfs). Missing fields are 0, namelen 255, bsize/frsize 4096. */
export interface StatfsReply {
  blocks?: bigint;
  bfree?: bigint;
  bavail?: bigint;
  files?: bigint;
  ffree?: bigint;
  bsize?: number;
  namelen?: number;
  frsize?: number;
}

/** One directory entry for READDIR. */
export interface DirEntry {
  name: string;
  ino: bigint;
  /** Only the S_IFMT bits are used (S_IFDIR, S_IFREG, ...). */
  mode: number;
  /**
   * Offset cookie the kernel will pass back to continue after this entry.
   * Default: the request offset + the entry's index + 1, which suits a
   * filesystem that lists a stable array and slices it at `offset`.
   */
  nextOffset?: bigint;
}

/** One directory entry for READDIRPLUS. `entry.nodeid` 0 means "no attributes for this one". */
export interface DirEntryPlus extends DirEntry {
  entry: EntryReply;
}

export type LockType = 'read' | 'write' | 'unlock';

/** A byte-range lock (struct fuse_file_lock). `end` is inclusive; LOCK_END_MAX means to end of file. */
export interface FileLock {
  type: LockType;
  start: bigint;
  end: bigint;
  /** Process holding or requesting the lock (tgid); 0 from the kernel on unlock. */
  pid: number;
}

/** GETLK / SETLK / SETLKW arguments. */
export interface LockRequest {
  fh: bigint;
  /**
   * Opaque lock owner from the kernel: one value per process (files_struct)
   * for fcntl locks, per open file description for OFD locks and flock.
   */
  owner: bigint;
  lock: FileLock;
  /** FUSE_LK_FLOCK: the lock came from flock(2) (only with the flockLocks capability). */
  flock: boolean;
}

export interface SetattrRequest {
  /** Raw fuse_setattr_in.valid bits. */
  valid: number;
  fh?: bigint;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: bigint;
  /** Nanoseconds since the epoch, or 'now' (FATTR_ATIME_NOW). */
  atimeNs?: bigint | 'now';
  mtimeNs?: bigint | 'now';
  ctimeNs?: bigint;
  lockOwner?: bigint;
  killSuidgid: boolean;
}

export interface OpenRequest {
  /** open(2) flags (O_RDWR, O_APPEND, ...; O_CREAT/O_EXCL/O_NOCTTY are stripped by the kernel). */
  flags: number;
  /** fuse_open_in.open_flags (FUSE_OPEN_KILL_SUIDGID). */
  openFlags: number;
}

export interface CreateRequest {
  mode: number;
  flags: number;
  umask: number;
  openFlags: number;
}

export interface MknodRequest {
  mode: number;
  rdev: number;
  umask: number;
}

export interface MkdirRequest {
  mode: number;
  umask: number;
}

export interface ReadRequest {
  fh: bigint;
  offset: bigint;
  size: number;
  /** The open(2) flags of the file. */
  flags: number;
  readFlags: number;
  lockOwner?: bigint;
}

export interface WriteRequest {
  fh: bigint;
  offset: bigint;
  /** Owned by the handler: it may keep the buffer. */
  data: Buffer;
  flags: number;
  writeFlags: number;
  lockOwner?: bigint;
  /** FUSE_WRITE_CACHE: a delayed write from the page cache (mmap write-back); fh is a guess. */
  cached: boolean;
}

export interface FlushRequest {
  fh: bigint;
  lockOwner: bigint;
}

export interface ReleaseRequest {
  fh: bigint;
  flags: number;
  releaseFlags: number;
  /** Present with FUSE_RELEASE_FLOCK_UNLOCK: the owner whose flock locks die with this file. */
  lockOwner?: bigint;
  flockUnlock: boolean;
}

export interface FsyncRequest {
  fh: bigint;
  datasync: boolean;
}

export interface ReaddirRequest {
  fh: bigint;
  offset: bigint;
  /** Bytes the kernel accepts; entries that do not fit are asked for again from their offset. */
  size: number;
}

export interface ReleasedirRequest {
  fh: bigint;
  flags: number;
}

export interface FallocateRequest {
  fh: bigint;
  offset: bigint;
  length: bigint;
  mode: number;
}

export type MaybePromise<T> = T | Promise<T>;
