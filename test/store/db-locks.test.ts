import { describe, expect, it } from 'vitest';
import { DatabaseLockTable } from '../../src/store/db-locks.js';
import {
  LOCK_RANGE_MAX,
  PENDING_LOCK_BYTE,
  RESERVED_LOCK_BYTE,
  SHARED_LOCK_FIRST,
  SHARED_LOCK_SIZE,
  type PosixLockType,
} from '../../src/store/locks.js';
import { LockError } from '../../src/store/rwmutex.js';

const SHARED_LAST = SHARED_LOCK_FIRST + SHARED_LOCK_SIZE - 1n;
const req = (type: PosixLockType, start: bigint, end: bigint = start) => ({ type, start, end });
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A SQLite client taking SHARED the way the unix VFS does. */
function sqliteShared(t: DatabaseLockTable, o: bigint): boolean {
  if (!t.setlk(o, req('read', PENDING_LOCK_BYTE))) return false;
  const ok = t.setlk(o, req('read', SHARED_LOCK_FIRST, SHARED_LAST));
  t.setlk(o, req('unlock', PENDING_LOCK_BYTE));
  return ok;
}

function tracked<T>(p: Promise<T>): { done: () => boolean; promise: Promise<T> } {
  let done = false;
  const promise = p.finally(() => {
    done = true;
  });
  promise.catch(() => {});
  return { done: () => done, promise };
}

describe('daemon write lock', () => {
  it('is granted at once on an idle database and excludes every client', async () => {
    const t = new DatabaseLockTable();
    const g = await t.acquireWriteLock();
    expect(t.heldBy(g.owner)).toEqual(
      new Map([
        ['pending', 'exclusive'],
        ['reserved', 'exclusive'],
        ['shared', 'exclusive'],
      ]),
    );
    expect(sqliteShared(t, 1n)).toBe(false);
    expect(t.setlk(1n, req('write', RESERVED_LOCK_BYTE))).toBe(false);
    expect(t.getlk(1n, req('read', SHARED_LOCK_FIRST, SHARED_LAST))?.type).toBe('write');
    g.release();
    g.release();
    expect(g.released).toBe(true);
    expect(sqliteShared(t, 1n)).toBe(true);
  });

  it('waits for readers to drain while refusing new ones', async () => {
    const t = new DatabaseLockTable();
    expect(sqliteShared(t, 1n)).toBe(true);
    expect(sqliteShared(t, 2n)).toBe(true);
    const w = tracked(t.acquireWriteLock());
    await tick();
    expect(w.done()).toBe(false);
    expect(sqliteShared(t, 3n)).toBe(false); // PENDING is taken: new readers get EAGAIN
    t.releaseAll(1n);
    await tick();
    expect(w.done()).toBe(false);
    t.setlk(2n, req('unlock', 0n, LOCK_RANGE_MAX));
    const g = await w.promise;
    expect(t.heldBy(g.owner).get('shared')).toBe('exclusive');
    g.release();
  });

  it('lets an in-flight SQLite writer commit before taking over', async () => {
    const t = new DatabaseLockTable();
    const writer = 1n;
    expect(sqliteShared(t, writer)).toBe(true);
    expect(t.setlk(writer, req('write', RESERVED_LOCK_BYTE))).toBe(true);
    const w = tracked(t.acquireWriteLock());
    await tick();
    expect(w.done()).toBe(false);
    // The client's commit path still works: PENDING, then EXCLUSIVE.
    expect(t.setlk(writer, req('write', PENDING_LOCK_BYTE))).toBe(true);
    expect(t.setlk(writer, req('write', SHARED_LOCK_FIRST, SHARED_LAST))).toBe(true);
    // Meanwhile no other client may become a writer.
    expect(t.setlk(2n, req('write', RESERVED_LOCK_BYTE))).toBe(false);
    t.setlk(writer, req('unlock', 0n, LOCK_RANGE_MAX));
    const g = await w.promise;
    expect(t.heldBy(g.owner).size).toBe(3);
    g.release();
  });

  it('times out, releasing everything it took', async () => {
    const t = new DatabaseLockTable();
    expect(sqliteShared(t, 1n)).toBe(true); // a reader that never finishes
    const err = await t.acquireWriteLock({ timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockError);
    expect((err as LockError).code).toBe('ERR_LOCK_TIMEOUT');
    expect(String(err)).toMatch(/SHARED/);
    for (const n of ['pending', 'reserved', 'shared'] as const) expect(t.mutex(n).waiting()).toEqual([]);
    expect(t.mutex('pending').state()).toBe('unlocked');
    expect(t.mutex('reserved').state()).toBe('unlocked');
    expect(sqliteShared(t, 2n)).toBe(true); // readers admitted again
  });

  it("aborts on the caller's signal, before or while waiting", async () => {
    const t = new DatabaseLockTable();
    expect(t.setlk(1n, req('write', RESERVED_LOCK_BYTE))).toBe(true);
    const ctl = new AbortController();
    const p = t.acquireWriteLock({ signal: ctl.signal });
    await tick();
    ctl.abort(new Error('shutdown'));
    const err = await p.catch((e: unknown) => e);
    expect((err as LockError).code).toBe('ERR_LOCK_ABORTED');
    expect(((err as LockError).cause as Error).message).toBe('shutdown');
    expect(t.setlk(2n, req('read', PENDING_LOCK_BYTE))).toBe(true);

    const err2 = await t.acquireWriteLock({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect((err2 as LockError).code).toBe('ERR_LOCK_ABORTED');
  });

  it('is not starved by a continuous stream of new readers', async () => {
    const t = new DatabaseLockTable();
    const active: bigint[] = [];
    let next = 1n;
    let refused = 0;
    // Keep three overlapping readers at all times, so SHARED never drains by itself.
    for (let i = 0; i < 3; i++) {
      expect(sqliteShared(t, next)).toBe(true);
      active.push(next++);
    }
    const w = tracked(t.acquireWriteLock());
    let rounds = 0;
    for (; rounds < 1000 && !w.done(); rounds++) {
      if (sqliteShared(t, next)) active.push(next);
      else refused++;
      next++;
      const oldest = active.shift();
      if (oldest !== undefined) t.releaseAll(oldest);
      await tick();
    }
    expect(w.done()).toBe(true);
    expect(rounds).toBeLessThan(10);
    expect(refused).toBeGreaterThan(0);
    (await w.promise).release();
  });

  it('queues daemon writers behind each other', async () => {
    const t = new DatabaseLockTable();
    const g1 = await t.acquireWriteLock();
    const w2 = tracked(t.acquireWriteLock());
    await tick();
    expect(w2.done()).toBe(false);
    g1.release();
    const g2 = await w2.promise;
    expect(t.heldBy(g2.owner).size).toBe(3);
    g2.release();
  });
});

describe('daemon read lock', () => {
  it('holds SHARED (not PENDING) and coexists with client readers', async () => {
    const t = new DatabaseLockTable();
    expect(sqliteShared(t, 1n)).toBe(true);
    const g = await t.acquireReadLock();
    expect(t.heldBy(g.owner)).toEqual(new Map([['shared', 'shared']]));
    expect(sqliteShared(t, 2n)).toBe(true);
    // A client cannot reach EXCLUSIVE while the snapshot reads.
    t.releaseAll(1n);
    t.releaseAll(2n);
    expect(t.setlk(3n, req('write', PENDING_LOCK_BYTE, SHARED_LAST))).toBe(false);
    g.release();
    expect(t.setlk(3n, req('write', PENDING_LOCK_BYTE, SHARED_LAST))).toBe(true);
  });

  it('waits out a committing client writer', async () => {
    const t = new DatabaseLockTable();
    t.setlk(1n, req('write', PENDING_LOCK_BYTE, SHARED_LAST));
    const r = tracked(t.acquireReadLock());
    await tick();
    expect(r.done()).toBe(false);
    t.releaseAll(1n);
    const g = await r.promise;
    expect(t.heldBy(g.owner).get('shared')).toBe('shared');
    g.release();
  });

  it('gives way to a waiting daemon writer, and blocks it until released', async () => {
    const t = new DatabaseLockTable();
    expect(sqliteShared(t, 1n)).toBe(true);
    const order: string[] = [];
    const w = tracked(t.acquireWriteLock().then((g) => (order.push('write'), g)));
    await tick();
    const r = tracked(t.acquireReadLock().then((g) => (order.push('read'), g)));
    await tick();
    expect(order).toEqual([]);
    t.releaseAll(1n);
    const wg = await w.promise;
    await tick();
    expect(order).toEqual(['write']);
    wg.release();
    const rg = await r.promise;
    expect(order).toEqual(['write', 'read']);
    const w2 = await t.acquireWriteLock({ timeoutMs: 20 }).catch((e: unknown) => e);
    expect((w2 as LockError).code).toBe('ERR_LOCK_TIMEOUT');
    rg.release();
    (await t.acquireWriteLock()).release();
  });

  it('times out while a client holds EXCLUSIVE', async () => {
    const t = new DatabaseLockTable();
    t.setlk(1n, req('write', PENDING_LOCK_BYTE, SHARED_LAST));
    const err = await t.acquireReadLock({ timeoutMs: 20 }).catch((e: unknown) => e);
    expect((err as LockError).code).toBe('ERR_LOCK_TIMEOUT');
    expect(t.mutex('pending').holders()).toEqual([{ owner: 1n, mode: 'exclusive' }]);
  });
});
