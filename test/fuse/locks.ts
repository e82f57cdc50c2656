import { FuseErrno, type FileLock, type LockRequest } from '../../src/fuse/index.js';

/** A byte-range lock held by one owner; `end` inclusive. */
export interface HeldLock {
  owner: bigint;
  fh: bigint;
  type: 'read' | 'write';
  start: bigint;
  end: bigint;
  pid: number;
}

/**
 * Per-inode POSIX byte-range lock table for the example filesystem: what
 * the kernel forwards as GETLK/SETLK/SETLKW with FUSE_POSIX_LOCKS is
 * arbitrated here. Owners are the kernel's opaque lock owners (one per
 * process for fcntl locks, one per open file description for OFD locks).
 */
export class LockTable {
  private readonly locks = new Map<bigint, HeldLock[]>();
  private readonly waiters = new Map<bigint, Set<() => void>>();

  held(ino: bigint): readonly HeldLock[] {
    return this.locks.get(ino) ?? [];
  }

  /** The first lock of another owner that conflicts with `req`, if any. */
  conflict(ino: bigint, owner: bigint, lock: FileLock): HeldLock | undefined {
    if (lock.type === 'unlock') return undefined;
    for (const l of this.held(ino)) {
      if (l.owner === owner) continue;
      if (l.end < lock.start || lock.end < l.start) continue;
      if (l.type === 'write' || lock.type === 'write') return l;
    }
    return undefined;
  }

  getlk(ino: bigint, req: LockRequest): FileLock | null {
    const c = this.conflict(ino, req.owner, req.lock);
    return c ? { type: c.type, start: c.start, end: c.end, pid: c.pid } : null;
  }

  /** F_SETLK / F_SETLKW. Waiting ends with EINTR when `signal` aborts. */
  async setlk(ino: bigint, req: LockRequest, wait: boolean, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (!this.conflict(ino, req.owner, req.lock)) {
        this.apply(ino, req);
        return;
      }
      if (!wait) throw new FuseErrno('EAGAIN');
      await this.waitForChange(ino, signal);
    }
  }

  /** Drops every lock `owner` holds on `ino` (close(2) of any descriptor: POSIX semantics). */
  releaseOwner(ino: bigint, owner: bigint): void {
    this.filter(ino, (l) => l.owner !== owner);
  }

  /** Drops locks taken through open file `fh` (its last close: OFD and flock semantics). */
  releaseFh(ino: bigint, fh: bigint): void {
    this.filter(ino, (l) => l.fh !== fh);
  }

  private filter(ino: bigint, keep: (l: HeldLock) => boolean): void {
    const before = this.held(ino);
    const after = before.filter(keep);
    if (after.length === before.length) return;
    this.store(ino, after);
    this.wake(ino);
  }

  /** Replaces `owner`'s locks in the range with the new one (or none, for unlock), splitting at the edges. */
  private apply(ino: bigint, req: LockRequest): void {
    const { start, end, type, pid } = req.lock;
    const next: HeldLock[] = [];
    for (const l of this.held(ino)) {
      if (l.owner !== req.owner || l.end < start || end < l.start) {
        next.push(l);
        continue;
      }
      if (l.start < start) next.push({ ...l, end: start - 1n });
      if (l.end > end) next.push({ ...l, start: end + 1n });
    }
    if (type !== 'unlock') next.push({ owner: req.owner, fh: req.fh, type, start, end, pid });
    this.store(ino, next);
    this.wake(ino);
  }

  private store(ino: bigint, list: HeldLock[]): void {
    if (list.length === 0) this.locks.delete(ino);
    else this.locks.set(ino, list);
  }

  private wake(ino: bigint): void {
    const w = this.waiters.get(ino);
    if (!w) return;
    this.waiters.delete(ino);
    for (const f of w) f();
  }

  private waitForChange(ino: bigint, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new FuseErrno('EINTR'));
        return;
      }
      let set = this.waiters.get(ino);
      if (!set) this.waiters.set(ino, (set = new Set()));
      const onAbort = (): void => {
        set.delete(done);
        reject(new FuseErrno('EINTR'));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      set.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
