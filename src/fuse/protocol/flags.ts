/**
 * Bit flags and constants of the FUSE kernel protocol (linux/fuse.h) that
 * this library reads or writes. INIT capability bits live in capabilities.ts.
 */

/** fuse_setattr_in.valid */
export const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags */
export const FOPEN = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
} as const;

export const RELEASE_FLAGS = { FLUSH: 1 << 0, FLOCK_UNLOCK: 1 << 1 } as const;
export const GETATTR_FH = 1 << 0;
export const LK_FLOCK = 1 << 0;
export const WRITE_FLAGS = { CACHE: 1 << 0, LOCKOWNER: 1 << 1, KILL_SUIDGID: 1 << 2 } as const;
export const READ_LOCKOWNER = 1 << 1;
export const FSYNC_FDATASYNC = 1 << 0;
export const EXPIRE_ONLY = 1 << 0;

/** fcntl lock types as the kernel sends them in fuse_file_lock.type (Linux values). */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

/** renameat2 flags a RENAME2 request can carry. */
export const RENAME_FLAGS = { NOREPLACE: 1 << 0, EXCHANGE: 1 << 1, WHITEOUT: 1 << 2 } as const;

/** The kernel's largest lock end offset (OFFSET_MAX): a lock "to end of file". */
export const LOCK_END_MAX = 0x7fff_ffff_ffff_ffffn;
