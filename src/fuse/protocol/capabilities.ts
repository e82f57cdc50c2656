/**
 * INIT capability flags by name. Bits 0–31 travel in fuse_init_{in,out}.flags,
 * bits 32–63 in flags2 (only when both sides set FUSE_INIT_EXT).
 *
 * Only capabilities whose consequences this library handles are listed as
 * requestable. FUSE_WRITEBACK_CACHE is deliberately absent: with it the kernel
 * may merge, delay and reorder writes, and a filesystem that replicates
 * SQLite pages must see every write, in order, when it happens.
 */
export const CAPABILITY_BITS = {
  /** The kernel may send several READs of one file at once (readahead in the background). */
  asyncRead: 0,
  /** The kernel forwards fcntl/OFD byte-range locks as GETLK/SETLK/SETLKW. */
  posixLocks: 1,
  /** OPEN carries O_TRUNC instead of a separate SETATTR(size=0). */
  atomicOTrunc: 3,
  /** The filesystem answers LOOKUP of "." and "..". */
  exportSupport: 4,
  /** WRITE may carry more than one page. */
  bigWrites: 5,
  /** The kernel does not apply the umask to create modes. */
  dontMask: 6,
  /** The kernel forwards flock(2) locks as SETLK with FUSE_LK_FLOCK. */
  flockLocks: 10,
  /** The kernel drops cached pages when it sees a changed mtime. */
  autoInvalData: 12,
  /** READDIRPLUS is used instead of READDIR + LOOKUPs. */
  readdirplus: 13,
  /** The kernel decides per directory between READDIR and READDIRPLUS. */
  readdirplusAuto: 14,
  /** Direct I/O may be submitted asynchronously. */
  asyncDio: 15,
  /** OPEN answered with ENOSYS means "no open needed" from then on. */
  noOpenSupport: 17,
  /** LOOKUP and READDIR may run concurrently in one directory. */
  parallelDirops: 18,
  /** The filesystem clears suid/sgid on write/chown/truncate itself. */
  handleKillpriv: 19,
  /** Reading the device after an abort fails with ECONNABORTED instead of ENODEV. */
  abortError: 21,
  /** fuse_init_out.max_pages is honoured (needed for writes above 128 KiB). */
  maxPages: 22,
  /** READLINK replies are cached. */
  cacheSymlinks: 23,
  /** OPENDIR answered with ENOSYS means "no opendir needed" from then on. */
  noOpendirSupport: 24,
  /** Cached pages are dropped only when the filesystem says so (notifyInvalInode). */
  explicitInvalData: 25,
  /** The filesystem clears suid/sgid itself, Linux VFS rules (v2). */
  handleKillprivV2: 28,
  /** Kernel-advertised: notifyInvalEntry may set FUSE_EXPIRE_ONLY. Not requestable. */
  hasExpireOnly: 35,
} as const;

export type Capability = keyof typeof CAPABILITY_BITS;

/** Bits that are not capabilities but protocol plumbing. */
export const INIT_EXT_BIT = 30;

/** Capabilities the kernel advertises but that mean nothing in a reply. */
const INFORMATIONAL: ReadonlySet<Capability> = new Set<Capability>(['hasExpireOnly']);

export function isRequestable(cap: Capability): boolean {
  return !INFORMATIONAL.has(cap);
}

export function capabilityMask(cap: Capability): bigint {
  return 1n << BigInt(CAPABILITY_BITS[cap]);
}

/** The named capabilities present in a 64-bit flags value. */
export function capabilitiesOf(flags: bigint): Set<Capability> {
  const out = new Set<Capability>();
  for (const [name, bit] of Object.entries(CAPABILITY_BITS)) {
    if ((flags >> BigInt(bit)) & 1n) out.add(name as Capability);
  }
  return out;
}

export function flagsOf(caps: Iterable<Capability>): bigint {
  let flags = 0n;
  for (const c of caps) flags |= capabilityMask(c);
  return flags;
}
