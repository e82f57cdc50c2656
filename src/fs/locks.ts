import { FuseErrno, type FileLock, type LockRequest, type RequestContext } from '../fuse/index.js';
import type { DB, PosixLockRequest } from '../store/index.js';

/**
 * SQLite's fcntl locks on a database file, forwarded by the kernel, mapped
 * onto the database's lock table (PENDING / RESERVED / SHARED per owner).
 * F_SETLK answers EAGAIN on conflict, which SQLite turns into SQLITE_BUSY;
 * F_SETLKW waits for a release and honours interrupts (EINTR).
 */
export class LockHandler {
  getlk(db: DB, req: LockRequest): FileLock | null {
    const conflict = db.locks.getlk(req.owner, toPosix(req));
    return conflict === null ? null : { type: conflict.type, start: conflict.start, end: conflict.end, pid: 0 };
  }

  setlk(ctx: RequestContext, db: DB, req: LockRequest, wait: boolean): Promise<void> | void {
    const posix = toPosix(req);
    if (db.locks.setlk(req.owner, posix)) return;
    if (!wait) throw new FuseErrno('EAGAIN');
    return this.waitFor(ctx, db, req.owner, posix);
  }

  private async waitFor(ctx: RequestContext, db: DB, owner: bigint, req: PosixLockRequest): Promise<void> {
    const names = db.locks.locksInRange(req.start, req.end);
    for (;;) {
      const signal = ctx.signal;
      if (signal.aborted) throw new FuseErrno('EINTR');
      try {
        await Promise.race(names.map((n) => db.locks.mutex(n).waitForChange(signal)));
      } catch {
        throw new FuseErrno('EINTR');
      }
      if (db.locks.setlk(owner, req)) return;
    }
  }
}

function toPosix(req: LockRequest): PosixLockRequest {
  return { start: req.lock.start, end: req.lock.end, type: req.lock.type };
}
