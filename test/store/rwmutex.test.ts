import { describe, expect, it } from 'vitest';
import { InternalLockOwner, RWMutex } from '../../src/store/rwmutex.js';

/** Lets queued microtasks and immediates run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('RWMutex', () => {
  it('shares between readers and excludes writers', () => {
    const m = new RWMutex('x');
    expect(m.state()).toBe('unlocked');
    expect(m.tryRLock(1n)).toBe(true);
    expect(m.tryRLock(2n)).toBe(true);
    expect(m.state()).toBe('shared');
    expect(m.tryLock(1n)).toBe(false); // not the only reader
    expect(m.tryLock(3n)).toBe(false);
    expect(m.holders()).toEqual([
      { owner: 1n, mode: 'shared' },
      { owner: 2n, mode: 'shared' },
    ]);
    expect(m.unlock(2n)).toBe(true);
    expect(m.tryLock(1n)).toBe(true); // sole reader upgrades
    expect(m.state()).toBe('exclusive');
    expect(m.modeOf(1n)).toBe('exclusive');
    expect(m.tryRLock(2n)).toBe(false);
    expect(m.tryLock(2n)).toBe(false);
    expect(m.tryLock(1n)).toBe(true); // re-lock is a no-op
    expect(m.holders()).toEqual([{ owner: 1n, mode: 'exclusive' }]);
  });

  it('downgrades an exclusive holder on a shared request', () => {
    const m = new RWMutex();
    m.tryLock(1n);
    expect(m.tryRLock(1n)).toBe(true);
    expect(m.modeOf(1n)).toBe('shared');
    expect(m.tryRLock(2n)).toBe(true);
    expect(m.state()).toBe('shared');
  });

  it('unlock is idempotent and reports whether anything was held', () => {
    const m = new RWMutex();
    m.tryRLock(1n);
    expect(m.unlock(1n)).toBe(true);
    expect(m.unlock(1n)).toBe(false);
    expect(m.unlock(9n)).toBe(false);
    expect(m.state()).toBe('unlocked');
  });

  it('keeps internal owners apart from every kernel owner value', () => {
    const m = new RWMutex();
    const a = new InternalLockOwner('a');
    const b = new InternalLockOwner('a');
    expect(m.tryLock(a)).toBe(true);
    expect(m.tryLock(b)).toBe(false);
    expect(m.tryLock(BigInt(a.id))).toBe(false);
    expect(m.tryRLock(0n)).toBe(false);
    expect(String(a)).toMatch(/^internal:a#\d+$/);
  });

  it('waitForChange resolves on release and downgrade, not on acquisition', async () => {
    const m = new RWMutex();
    m.tryLock(1n);
    let woke = 0;
    void m.waitForChange().then(() => woke++);
    m.tryLock(1n);
    expect(m.tryRLock(2n)).toBe(false);
    await tick();
    expect(woke).toBe(0);
    m.tryRLock(1n); // downgrade
    await tick();
    expect(woke).toBe(1);
    void m.waitForChange().then(() => woke++);
    m.unlock(1n);
    await tick();
    expect(woke).toBe(2);
  });

  it('waitForChange rejects with the abort reason', async () => {
    const m = new RWMutex();
    const ctl = new AbortController();
    const p = m.waitForChange(ctl.signal);
    ctl.abort(new Error('bye'));
    await expect(p).rejects.toThrow('bye');
    await expect(m.waitForChange(ctl.signal)).rejects.toThrow('bye');
  });

  it('lock() waits for holders and keeps new readers out meanwhile', async () => {
    const m = new RWMutex();
    const w = new InternalLockOwner('w');
    m.tryRLock(1n);
    m.tryRLock(2n);
    let granted = false;
    const p = m.lock(w).then(() => {
      granted = true;
    });
    await tick();
    expect(granted).toBe(false);
    expect(m.waiting()).toEqual([w]);
    expect(m.tryRLock(3n)).toBe(false); // writer preference
    expect(m.canRLock(3n)).toBe(false);
    expect(m.tryRLock(1n)).toBe(true); // an existing holder is unaffected
    m.unlock(1n);
    await tick();
    expect(granted).toBe(false);
    m.unlock(2n);
    await p;
    expect(m.modeOf(w)).toBe('exclusive');
    expect(m.waiting()).toEqual([]);
  });

  it('an aborted lock() withdraws its intent and holds nothing', async () => {
    const m = new RWMutex();
    const w = new InternalLockOwner('w');
    m.tryRLock(1n);
    const ctl = new AbortController();
    const p = m.lock(w, ctl.signal);
    await tick();
    expect(m.tryRLock(2n)).toBe(false);
    ctl.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(m.modeOf(w)).toBeNull();
    expect(m.tryRLock(2n)).toBe(true);
  });

  it('serves internal waiters first come first served', async () => {
    const m = new RWMutex();
    m.tryLock(1n);
    const order: string[] = [];
    const a = new InternalLockOwner('a');
    const b = new InternalLockOwner('b');
    const pa = m.lock(a).then(() => order.push('a'));
    const pb = m.lock(b).then(() => order.push('b'));
    await tick();
    m.unlock(1n);
    await pa;
    await tick();
    expect(order).toEqual(['a']);
    m.unlock(a);
    await pb;
    expect(order).toEqual(['a', 'b']);
  });

  it('rlock() waits for an exclusive holder', async () => {
    const m = new RWMutex();
    m.tryLock(1n);
    const r = new InternalLockOwner('r');
    let granted = false;
    const p = m.rlock(r).then(() => {
      granted = true;
    });
    await tick();
    expect(granted).toBe(false);
    m.tryRLock(1n); // downgrade lets readers in
    await p;
    expect(m.holders().map((h) => h.mode)).toEqual(['shared', 'shared']);
  });

  it('revert restores a mode even while a writer waits', async () => {
    const m = new RWMutex();
    m.tryLock(1n);
    const w = new InternalLockOwner('w');
    const p = m.lock(w);
    await tick();
    m.tryRLock(1n); // downgrade while w waits
    m.revert(1n, 'exclusive'); // undo it: tryLock would refuse because of w's intent
    expect(m.modeOf(1n)).toBe('exclusive');
    m.revert(1n, null);
    await p;
    expect(m.modeOf(w)).toBe('exclusive');
    expect(() => m.revert(1n, 'shared')).toThrow(/cannot revert/);
  });
});
