import { DATABASE_LOCK_BYTES, LockTable, describeLocks, type DatabaseLockName } from './locks.js';
import { InternalLockOwner, LockError } from './rwmutex.js';

/** A lock the daemon holds; release() is idempotent. */
export interface LockGuard {
  readonly owner: InternalLockOwner;
  readonly released: boolean;
  release(): void;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  /** Give up after this long (ERR_LOCK_TIMEOUT); default: wait until granted or aborted. */
  timeoutMs?: number;
}

/** Combines the caller's signal and a timeout into one signal whose reason is a LockError. */
function deadline(opts: AcquireOptions, describe: () => string): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const onAbort = (): void => {
    ctl.abort(new LockError('ERR_LOCK_ABORTED', `aborted ${describe()}`, { cause: opts.signal?.reason }));
  };
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          ctl.abort(new LockError('ERR_LOCK_TIMEOUT', `timed out after ${opts.timeoutMs} ms ${describe()}`));
        }, opts.timeoutMs);
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    dispose: () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

function asLockError(err: unknown, signal: AbortSignal): unknown {
  if (err instanceof LockError) return err;
  return signal.aborted && signal.reason instanceof LockError ? signal.reason : err;
}

/**
 * The database file's PENDING/RESERVED/SHARED locks, plus the daemon's own
 * acquisitions for applying LTX files, recovery (rollback-journal mode) and
 * snapshots/exports. Waiting is driven by release notifications, never by
 * polling or backoff timers.
 */
export class DatabaseLockTable extends LockTable<DatabaseLockName> {
  constructor() {
    super(DATABASE_LOCK_BYTES);
  }

  /**
   * Exclusive access for the daemon: RESERVED first (an in-flight SQLite
   * writer finishes its commit rather than deadlocking against us on
   * PENDING), then PENDING (no new reader can start: SQLite takes PENDING
   * shared before SHARED), then SHARED exclusively once current readers
   * drain. Each step waits with writer preference, so a stream of new
   * readers or writers cannot starve it. On timeout or abort everything
   * taken so far is released.
   */
  async acquireWriteLock(opts: AcquireOptions = {}): Promise<LockGuard> {
    const owner = new InternalLockOwner('write');
    let stage: DatabaseLockName = 'reserved';
    const d = deadline(opts, () => `waiting for ${stage.toUpperCase()} for the write lock (${describeLocks(this)})`);
    try {
      for (const name of ['reserved', 'pending', 'shared'] as const) {
        stage = name;
        await this.mutex(name).lock(owner, d.signal);
      }
      return this.#guard(owner);
    } catch (err) {
      this.releaseAll(owner);
      throw asLockError(err, d.signal);
    } finally {
      d.dispose();
    }
  }

  /**
   * Shared access for snapshots and exports, the way SQLite's readers do it:
   * PENDING shared (waits out a committing writer or a waiting daemon
   * writer), then SHARED shared, then PENDING is dropped.
   */
  async acquireReadLock(opts: AcquireOptions = {}): Promise<LockGuard> {
    const owner = new InternalLockOwner('read');
    let stage: DatabaseLockName = 'pending';
    const d = deadline(opts, () => `waiting for ${stage.toUpperCase()} for a read lock (${describeLocks(this)})`);
    try {
      await this.mutex('pending').rlock(owner, d.signal);
      stage = 'shared';
      await this.mutex('shared').rlock(owner, d.signal);
      this.mutex('pending').unlock(owner);
      return this.#guard(owner);
    } catch (err) {
      this.releaseAll(owner);
      throw asLockError(err, d.signal);
    } finally {
      d.dispose();
    }
  }

  #guard(owner: InternalLockOwner): LockGuard {
    let released = false;
    return {
      owner,
      get released() {
        return released;
      },
      release: () => {
        if (released) return;
        released = true;
        this.releaseAll(owner);
      },
    };
  }
}
