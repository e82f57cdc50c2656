import { describe, expect, it } from 'vitest';
import { DatabaseLockTable } from '../../src/store/db-locks.js';
import {
  DATABASE_LOCK_BYTES,
  LOCK_RANGE_MAX,
  LockTable,
  PENDING_LOCK_BYTE,
  RESERVED_LOCK_BYTE,
  SHARED_LOCK_FIRST,
  SHARED_LOCK_SIZE,
  createShmLockTable,
  lockRangeEnd,
  type DatabaseLockName,
  type PosixLockType,
} from '../../src/store/locks.js';
import { prng } from '../http/prng.js';

const SHARED_LAST = SHARED_LOCK_FIRST + SHARED_LOCK_SIZE - 1n;
const req = (type: PosixLockType, start: bigint, end: bigint = start) => ({ type, start, end });

/** SQLite unix VFS: SHARED lock = PENDING read, SHARED-range read, PENDING unlock. */
function sqliteShared(t: LockTable<DatabaseLockName>, o: bigint): boolean {
  if (!t.setlk(o, req('read', PENDING_LOCK_BYTE))) return false;
  const ok = t.setlk(o, req('read', SHARED_LOCK_FIRST, SHARED_LAST));
  t.setlk(o, req('unlock', PENDING_LOCK_BYTE));
  return ok;
}

describe('lock ranges', () => {
  it('maps byte ranges to the lock bytes they overlap', () => {
    const t = new DatabaseLockTable();
    expect(t.locksInRange(0n, LOCK_RANGE_MAX)).toEqual(['pending', 'reserved', 'shared']);
    expect(t.locksInRange(PENDING_LOCK_BYTE, PENDING_LOCK_BYTE)).toEqual(['pending']);
    expect(t.locksInRange(RESERVED_LOCK_BYTE, RESERVED_LOCK_BYTE)).toEqual(['reserved']);
    expect(t.locksInRange(PENDING_LOCK_BYTE, RESERVED_LOCK_BYTE)).toEqual(['pending', 'reserved']);
    expect(t.locksInRange(SHARED_LOCK_FIRST + 100n, SHARED_LOCK_FIRST + 100n)).toEqual(['shared']);
    expect(t.locksInRange(SHARED_LAST, SHARED_LAST + 10n)).toEqual(['shared']);
    expect(t.locksInRange(SHARED_LAST + 1n, LOCK_RANGE_MAX)).toEqual([]);
    expect(t.locksInRange(0n, PENDING_LOCK_BYTE - 1n)).toEqual([]);
  });

  it('turns fcntl lengths into inclusive ends', () => {
    expect(lockRangeEnd(PENDING_LOCK_BYTE, 1n)).toBe(PENDING_LOCK_BYTE);
    expect(lockRangeEnd(SHARED_LOCK_FIRST, SHARED_LOCK_SIZE)).toBe(SHARED_LAST);
    expect(lockRangeEnd(5n, 0n)).toBe(LOCK_RANGE_MAX);
    expect(lockRangeEnd(LOCK_RANGE_MAX, 10n)).toBe(LOCK_RANGE_MAX);
  });

  it('lays out the SHM lock bytes 120..128', () => {
    const t = createShmLockTable();
    expect(t.locksInRange(120n, 120n)).toEqual(['write']);
    expect(t.locksInRange(121n, 122n)).toEqual(['ckpt', 'recover']);
    expect(t.locksInRange(123n, 127n)).toEqual(['read0', 'read1', 'read2', 'read3', 'read4']);
    expect(t.locksInRange(128n, 128n)).toEqual(['dms']);
    expect(t.locksInRange(0n, LOCK_RANGE_MAX)).toHaveLength(9);
    expect(t.setlk(1n, req('write', 120n))).toBe(true);
    expect(t.setlk(2n, req('read', 120n))).toBe(false);
    expect(t.setlk(2n, req('read', 123n))).toBe(true);
  });
});

describe('database lock table', () => {
  it("runs SQLite's rollback-mode sequence: readers, RESERVED, PENDING, EXCLUSIVE", () => {
    const t = new DatabaseLockTable();
    const w = 1n;
    const r = 2n;
    expect(sqliteShared(t, w)).toBe(true);
    expect(sqliteShared(t, r)).toBe(true);
    expect(t.setlk(w, req('write', RESERVED_LOCK_BYTE))).toBe(true);
    expect(t.setlk(r, req('write', RESERVED_LOCK_BYTE))).toBe(false); // second writer: EAGAIN
    expect(t.setlk(w, req('write', PENDING_LOCK_BYTE))).toBe(true);
    expect(sqliteShared(t, 3n)).toBe(false); // PENDING keeps new readers out
    expect(t.setlk(w, req('write', SHARED_LOCK_FIRST, SHARED_LAST))).toBe(false); // r still reads
    t.setlk(r, req('unlock', 0n, LOCK_RANGE_MAX));
    expect(t.setlk(w, req('write', SHARED_LOCK_FIRST, SHARED_LAST))).toBe(true); // EXCLUSIVE
    expect(t.heldBy(w)).toEqual(
      new Map([
        ['pending', 'exclusive'],
        ['reserved', 'exclusive'],
        ['shared', 'exclusive'],
      ]),
    );
    // Commit done: back to SHARED (read lock on the range, then drop PENDING+RESERVED).
    expect(t.setlk(w, req('read', SHARED_LOCK_FIRST, SHARED_LAST))).toBe(true);
    expect(t.setlk(w, req('unlock', PENDING_LOCK_BYTE, RESERVED_LOCK_BYTE))).toBe(true);
    expect(t.heldBy(w)).toEqual(new Map([['shared', 'shared']]));
    expect(sqliteShared(t, 3n)).toBe(true);
  });

  it('rolls back a partially granted range request, restoring previous modes', () => {
    const t = new DatabaseLockTable();
    expect(t.setlk(1n, req('read', PENDING_LOCK_BYTE))).toBe(true);
    expect(t.setlk(2n, req('read', SHARED_LOCK_FIRST, SHARED_LAST))).toBe(true);
    // PENDING (upgrade) and RESERVED succeed, SHARED fails because of owner 2.
    expect(t.setlk(1n, req('write', PENDING_LOCK_BYTE, SHARED_LAST))).toBe(false);
    expect(t.heldBy(1n)).toEqual(new Map([['pending', 'shared']]));
    expect(t.mutex('reserved').state()).toBe('unlocked');
    expect(t.setlk(3n, req('read', PENDING_LOCK_BYTE))).toBe(true); // PENDING really is shared again

    // A read request that downgraded one lock and then failed is undone too.
    const u = new DatabaseLockTable();
    u.setlk(1n, req('write', PENDING_LOCK_BYTE));
    u.setlk(2n, req('write', RESERVED_LOCK_BYTE));
    expect(u.setlk(1n, req('read', PENDING_LOCK_BYTE, RESERVED_LOCK_BYTE))).toBe(false);
    expect(u.heldBy(1n)).toEqual(new Map([['pending', 'exclusive']]));
  });

  it('releases everything on a whole-file unlock and on releaseAll', () => {
    const t = new DatabaseLockTable();
    t.setlk(1n, req('write', PENDING_LOCK_BYTE, SHARED_LAST));
    expect(t.setlk(1n, req('unlock', 0n, LOCK_RANGE_MAX))).toBe(true);
    expect(t.heldBy(1n).size).toBe(0);
    t.setlk(1n, req('read', SHARED_LOCK_FIRST, SHARED_LAST));
    t.setlk(1n, req('write', RESERVED_LOCK_BYTE));
    t.releaseAll(1n);
    expect(t.heldBy(1n).size).toBe(0);
    expect(t.setlk(1n, req('unlock', 0n, LOCK_RANGE_MAX))).toBe(true); // idempotent
  });

  it('grants requests that touch no lock byte', () => {
    const t = new DatabaseLockTable();
    t.setlk(1n, req('write', PENDING_LOCK_BYTE, SHARED_LAST));
    expect(t.setlk(2n, req('write', 0n, 100n))).toBe(true);
    expect(t.getlk(2n, req('write', 0n, 100n))).toBeNull();
  });

  it('getlk reports the conflicting type with pid -1', () => {
    const t = new DatabaseLockTable();
    t.setlk(1n, req('read', SHARED_LOCK_FIRST, SHARED_LAST));
    t.setlk(1n, req('write', RESERVED_LOCK_BYTE));
    const whole = req('write', 0n, LOCK_RANGE_MAX);
    expect(t.getlk(2n, req('read', SHARED_LOCK_FIRST, SHARED_LAST))).toBeNull();
    expect(t.getlk(2n, req('write', SHARED_LOCK_FIRST, SHARED_LAST))).toEqual({
      type: 'read',
      start: SHARED_LOCK_FIRST,
      end: SHARED_LAST,
      pid: -1,
    });
    expect(t.getlk(2n, req('read', RESERVED_LOCK_BYTE))).toEqual({
      type: 'write',
      start: RESERVED_LOCK_BYTE,
      end: RESERVED_LOCK_BYTE,
      pid: -1,
    });
    expect(t.getlk(2n, whole)?.type).toBe('write');
    expect(t.getlk(1n, req('write', SHARED_LOCK_FIRST, SHARED_LAST))).toBeNull(); // own lock, sole reader
    expect(t.getlk(2n, req('unlock', 0n, LOCK_RANGE_MAX))).toBeNull();
    // getlk never changes state.
    expect(t.heldBy(2n).size).toBe(0);
    expect(t.heldBy(1n).size).toBe(2);
  });

  it('describes its state for debugging', () => {
    const t = new DatabaseLockTable();
    t.setlk(0xabn, req('read', SHARED_LOCK_FIRST, SHARED_LAST));
    expect(t.snapshot().shared).toEqual({ state: 'shared', holders: [{ owner: '0xab', mode: 'shared' }], waiting: [] });
    expect(t.snapshot().pending.state).toBe('unlocked');
  });
});

describe('lock table property test against a model', () => {
  type Mode = 'shared' | 'exclusive';
  const names = DATABASE_LOCK_BYTES.map((d) => d.name);

  /** The POSIX semantics LiteFS implements, per lock byte, all-or-nothing. */
  class Model {
    locks = new Map<DatabaseLockName, Map<bigint, Mode>>(names.map((n) => [n, new Map()]));
    conflicts(o: bigint, n: DatabaseLockName, type: 'read' | 'write'): boolean {
      for (const [other, mode] of this.locks.get(n) ?? []) {
        if (other !== o && (type === 'write' || mode === 'exclusive')) return true;
      }
      return false;
    }
    setlk(o: bigint, ns: DatabaseLockName[], type: PosixLockType): boolean {
      if (type === 'unlock') {
        for (const n of ns) this.locks.get(n)?.delete(o);
        return true;
      }
      if (ns.some((n) => this.conflicts(o, n, type))) return false;
      for (const n of ns) this.locks.get(n)?.set(o, type === 'write' ? 'exclusive' : 'shared');
      return true;
    }
    getlk(o: bigint, ns: DatabaseLockName[], type: PosixLockType): 'read' | 'write' | null {
      if (type === 'unlock') return null;
      for (const n of ns) {
        if (!this.conflicts(o, n, type)) continue;
        const others = [...(this.locks.get(n) ?? [])].filter(([x]) => x !== o);
        return others.some(([, m]) => m === 'exclusive') ? 'write' : 'read';
      }
      return null;
    }
    state(): Record<string, [string, Mode][]> {
      const out: Record<string, [string, Mode][]> = {};
      for (const [n, m] of this.locks) out[n] = [...m].map(([o, mode]): [string, Mode] => [`0x${o.toString(16)}`, mode]).sort();
      return out;
    }
  }

  const ranges: [bigint, bigint][] = [
    [PENDING_LOCK_BYTE, PENDING_LOCK_BYTE],
    [RESERVED_LOCK_BYTE, RESERVED_LOCK_BYTE],
    [SHARED_LOCK_FIRST, SHARED_LAST],
    [SHARED_LOCK_FIRST + 7n, SHARED_LOCK_FIRST + 7n],
    [PENDING_LOCK_BYTE, RESERVED_LOCK_BYTE],
    [RESERVED_LOCK_BYTE, SHARED_LAST],
    [PENDING_LOCK_BYTE, SHARED_LAST],
    [0n, LOCK_RANGE_MAX],
    [0n, 4096n],
  ];
  const types: PosixLockType[] = ['read', 'write', 'unlock'];

  it('agrees with the model on 20,000 random operations', () => {
    const rand = prng(2024);
    const t = new DatabaseLockTable();
    const model = new Model();
    let granted = 0;
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const o = BigInt(1 + rand.int(4));
      if (rand.int(50) === 0) {
        t.releaseAll(o);
        model.setlk(o, names, 'unlock');
        continue;
      }
      const [start, end] = ranges[rand.int(ranges.length)] ?? [0n, 0n];
      const type = types[rand.int(types.length)] ?? 'read';
      const ns = t.locksInRange(start, end);
      const q = req(type, start, end);
      const conflict = t.getlk(o, q);
      expect(conflict?.type ?? null, `op ${i}`).toBe(model.getlk(o, ns, type));
      const got = t.setlk(o, q);
      expect(got, `op ${i}: ${type} ${start}-${end} by ${o}`).toBe(model.setlk(o, ns, type));
      expect(got).toBe(type === 'unlock' || conflict === null);
      if (type !== 'unlock') {
        if (got) granted++;
        else refused++;
      }
      const snap = t.snapshot();
      const actual: Record<string, [string, Mode][]> = {};
      for (const n of names) actual[n] = snap[n].holders.map((h): [string, Mode] => [h.owner, h.mode]).sort();
      expect(actual, `state after op ${i}`).toEqual(model.state());
    }
    expect(granted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });
});
