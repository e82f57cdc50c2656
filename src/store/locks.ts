import { RWMutex, describeOwner, type LockHolder, type LockMode, type LockOwner, type MutexState } from './rwmutex.js';

/**
 * POSIX byte-range locks from SQLite clients (via FUSE), emulated as one
 * owner-aware RWMutex per SQLite lock byte. LiteFS never takes real OS locks
 * on the underlying files: all coordination, including with the daemon's own
 * apply/recovery/snapshot work, happens in these tables.
 */

/** One logical lock: the bytes [first, last] of the file. */
export interface LockByteDef<N extends string> {
  name: N;
  first: bigint;
  last: bigint;
}

export type PosixLockType = 'read' | 'write' | 'unlock';

/** A FUSE lock request: inclusive byte range, as the kernel sends it. */
export interface PosixLockRequest {
  start: bigint;
  /** Inclusive; use lockRangeEnd() for an fcntl-style length. */
  end: bigint;
  type: PosixLockType;
}

/** What F_GETLK reports for a conflict; the holder's pid is unknown (-1), as in LiteFS. */
export interface PosixLockConflict {
  type: 'read' | 'write';
  start: bigint;
  end: bigint;
  pid: -1;
}

/** Largest offset; a whole-file range ends here. */
export const LOCK_RANGE_MAX = 0xffff_ffff_ffff_ffffn;

/** Inclusive end of an fcntl range: len 0 means "to end of file". */
export function lockRangeEnd(start: bigint, len: bigint): bigint {
  if (len === 0n) return LOCK_RANGE_MAX;
  const end = start + len - 1n;
  return end > LOCK_RANGE_MAX ? LOCK_RANGE_MAX : end;
}

export interface LockSnapshot {
  state: MutexState;
  holders: { owner: string; mode: LockMode }[];
  waiting: string[];
}

/**
 * A set of lock bytes of one file. Requests map to every lock whose bytes
 * overlap the range and are all-or-nothing: a failed acquisition restores
 * the owner's previous modes on the locks already taken, and reports
 * false (the caller answers EAGAIN).
 */
export class LockTable<N extends string> {
  readonly #defs: readonly LockByteDef<N>[];
  readonly #mutexes: Map<N, RWMutex>;

  constructor(defs: readonly LockByteDef<N>[]) {
    this.#defs = defs;
    this.#mutexes = new Map(defs.map((d) => [d.name, new RWMutex(d.name)]));
  }

  mutex(name: N): RWMutex {
    const m = this.#mutexes.get(name);
    if (!m) throw new Error(`no lock named ${name}`);
    return m;
  }

  /** Lock names whose bytes overlap [start, end], in table order. */
  locksInRange(start: bigint, end: bigint): N[] {
    return this.#defs.filter((d) => d.first <= end && start <= d.last).map((d) => d.name);
  }

  /** F_SETLK. True when granted (or nothing to do); false means EAGAIN. */
  setlk(owner: LockOwner, req: PosixLockRequest): boolean {
    const names = this.locksInRange(req.start, req.end);
    if (req.type === 'unlock') {
      for (const n of names) this.mutex(n).unlock(owner);
      return true;
    }
    const done: { m: RWMutex; prev: LockMode | null }[] = [];
    for (const n of names) {
      const m = this.mutex(n);
      const prev = m.modeOf(owner);
      const ok = req.type === 'write' ? m.tryLock(owner) : m.tryRLock(owner);
      if (!ok) {
        for (const d of done.reverse()) d.m.revert(owner, d.prev);
        return false;
      }
      done.push({ m, prev });
    }
    return true;
  }

  /** F_GETLK: the first conflict with `req`, or null when it would be granted. */
  getlk(owner: LockOwner, req: PosixLockRequest): PosixLockConflict | null {
    if (req.type === 'unlock') return null;
    for (const n of this.locksInRange(req.start, req.end)) {
      const m = this.mutex(n);
      const ok = req.type === 'write' ? m.canLock(owner) : m.canRLock(owner);
      if (ok) continue;
      // Other readers block only a write request; an exclusive holder, or a
      // daemon writer waiting with nobody else holding, reads as a write lock.
      const type = !m.heldExclusivelyByOther(owner) && m.heldByOther(owner) ? 'read' : 'write';
      return { type, start: req.start, end: req.end, pid: -1 };
    }
    return null;
  }

  /** Drops every lock of `owner` (FUSE flush/release: closing any fd drops the process's locks). */
  releaseAll(owner: LockOwner): void {
    for (const m of this.#mutexes.values()) m.unlock(owner);
  }

  /** The locks `owner` holds, by name. */
  heldBy(owner: LockOwner): Map<N, LockMode> {
    const out = new Map<N, LockMode>();
    for (const [n, m] of this.#mutexes) {
      const mode = m.modeOf(owner);
      if (mode) out.set(n, mode);
    }
    return out;
  }

  /** Every lock's state, for /debug/vars and error messages. */
  snapshot(): Record<N, LockSnapshot> {
    const out = {} as Record<N, LockSnapshot>;
    for (const [n, m] of this.#mutexes) {
      out[n] = {
        state: m.state(),
        holders: m.holders().map((h: LockHolder) => ({ owner: describeOwner(h.owner), mode: h.mode })),
        waiting: m.waiting().map(describeOwner),
      };
    }
    return out;
  }
}

/** SQLite's database-file lock bytes (os.h): PENDING_LOCK_BYTE and the bytes after it. */
export const PENDING_LOCK_BYTE = 0x4000_0000n;
export const RESERVED_LOCK_BYTE = PENDING_LOCK_BYTE + 1n;
export const SHARED_LOCK_FIRST = PENDING_LOCK_BYTE + 2n;
export const SHARED_LOCK_SIZE = 510n;

export type DatabaseLockName = 'pending' | 'reserved' | 'shared';

/**
 * SHARED is one logical lock over its 510 bytes. SQLite's unix VFS always
 * locks the whole range; LiteFS maps only requests that include its first
 * byte. Any overlap is the safer reading for other VFSes, and identical for
 * SQLite's.
 */
export const DATABASE_LOCK_BYTES: readonly LockByteDef<DatabaseLockName>[] = [
  { name: 'pending', first: PENDING_LOCK_BYTE, last: PENDING_LOCK_BYTE },
  { name: 'reserved', first: RESERVED_LOCK_BYTE, last: RESERVED_LOCK_BYTE },
  { name: 'shared', first: SHARED_LOCK_FIRST, last: SHARED_LOCK_FIRST + SHARED_LOCK_SIZE - 1n },
];

export type ShmLockName = 'write' | 'ckpt' | 'recover' | 'read0' | 'read1' | 'read2' | 'read3' | 'read4' | 'dms';

/** SQLite's WAL-index (-shm) lock bytes: 120 + slot, DMS at 128. */
export const SHM_LOCK_BYTES: readonly LockByteDef<ShmLockName>[] = (
  ['write', 'ckpt', 'recover', 'read0', 'read1', 'read2', 'read3', 'read4', 'dms'] as const
).map((name, i) => ({ name, first: 120n + BigInt(i), last: 120n + BigInt(i) }));

export function createShmLockTable(): LockTable<ShmLockName> {
  return new LockTable(SHM_LOCK_BYTES);
}

export function describeLocks<N extends string>(table: LockTable<N>): string {
  return Object.entries<LockSnapshot>(table.snapshot())
    .map(([n, s]) => `${n}=${s.state}${s.holders.length ? `[${s.holders.map((h) => `${h.owner}:${h.mode}`).join(',')}]` : ''}`)
    .join(' ');
}
