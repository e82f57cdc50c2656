import { describe, expect, it } from 'vitest';
import {
  Fence,
  fenceMarginMs,
  isLeaseError,
  LeaseError,
  monotonicNow,
  runRenewLoop,
  type CallOptions,
  type Lease,
} from '../../src/lease/index.js';

/** A lease whose renew() does what the test says: succeed, fail, or hang until aborted (or never). */
class ScriptedLease implements Lease {
  readonly id = 'scripted';
  renewedAt = new Date();
  renewals = 0;
  behaviour: 'ok' | 'fail' | 'hang' | 'hang-ignoring-abort' = 'ok';

  constructor(readonly ttlMs: number) {}

  async renew(opts: CallOptions = {}): Promise<void> {
    this.renewals++;
    if (this.behaviour === 'ok') return;
    if (this.behaviour === 'fail') throw new Error('store unavailable');
    if (this.behaviour === 'hang-ignoring-abort') return new Promise<void>(() => undefined);
    return new Promise<void>((_resolve, reject) => opts.signal?.addEventListener('abort', () => reject(opts.signal!.reason as Error)));
  }

  handoff(): Promise<void> {
    return Promise.reject(new LeaseError('ERR_LEASE_HANDOFF_UNSUPPORTED', 'no'));
  }

  nextHandoff(opts: CallOptions = {}): Promise<bigint> {
    return new Promise((_r, reject) => opts.signal?.addEventListener('abort', () => reject(opts.signal!.reason as Error)));
  }

  async close(): Promise<void> {}
}

describe('fenceMarginMs', () => {
  it('is TTL × 1% + 200 ms', () => {
    expect(fenceMarginMs(2_000)).toBe(220);
    expect(fenceMarginMs(10_000)).toBe(300);
    expect(fenceMarginMs(60_000)).toBe(800);
    expect(fenceMarginMs(200)).toBe(50);
  });
});

describe('Fence', () => {
  it('fires once at validFrom + TTL − margin, and a later extension moves it', async () => {
    let fired = 0;
    const fence = new Fence({ ttlMs: 300, marginMs: 100, now: monotonicNow, onExpire: () => fired++ });
    const t0 = monotonicNow();
    fence.extend(t0);
    expect(fence.deadline).toBe(t0 + 200);
    await new Promise((r) => setTimeout(r, 100));
    fence.extend(t0 + 100);
    fence.extend(t0 + 50); // never backwards
    expect(fence.deadline).toBe(t0 + 300);
    await new Promise((r) => setTimeout(r, 150));
    expect(fired).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(fired).toBe(1);
    expect(fence.expired).toBe(true);
    expect(isLeaseError(fence.signal.reason, 'ERR_LEASE_FENCED')).toBe(true);
    // A late success cannot undo the step-down.
    fence.extend(monotonicNow());
    await new Promise((r) => setTimeout(r, 50));
    expect(fired).toBe(1);
  });

  it('fires at once when the deadline has already passed', () => {
    let fired = false;
    const fence = new Fence({ ttlMs: 100, marginMs: 10, now: monotonicNow, onExpire: () => (fired = true) });
    fence.extend(monotonicNow() - 1_000);
    expect(fired).toBe(true);
  });
});

describe('runRenewLoop fencing', () => {
  for (const behaviour of ['hang', 'hang-ignoring-abort', 'fail'] as const) {
    it(`steps down by its own timer when renewals ${behaviour === 'fail' ? 'fail' : 'hang'}${behaviour === 'hang-ignoring-abort' ? ' and ignore their abort signal' : ''}`, async () => {
      const lease = new ScriptedLease(600);
      const validFrom = monotonicNow();
      let fencedAt = 0;
      const loop = runRenewLoop(lease, {
        signal: new AbortController().signal,
        validFrom,
        safetyMarginMs: 100,
        retryIntervalMs: 50,
        onRenew: () => {
          lease.behaviour = behaviour;
        },
        onFence: () => (fencedAt = monotonicNow()),
      });
      const result = await loop;
      const endedAt = monotonicNow();
      expect(result.reason).toBe('expired');
      expect(result.reason === 'expired' && isLeaseError(result.error, 'ERR_LEASE_FENCED')).toBe(true);
      // The first renewal (sent at ~300 ms) succeeded: the fence is ~300 + 600 − 100 ms after validFrom.
      expect(lease.renewals).toBeGreaterThanOrEqual(2);
      expect(fencedAt - validFrom).toBeGreaterThanOrEqual(780);
      // Fired by the timer, not by a request timing out: no later than a loaded machine's timer slack.
      expect(fencedAt - validFrom).toBeLessThan(780 + 1_000);
      expect(endedAt - fencedAt).toBeLessThan(1_000);
    });
  }

  it('does not call onFence when stopped first', async () => {
    const lease = new ScriptedLease(400);
    const ac = new AbortController();
    let fenced = false;
    const loop = runRenewLoop(lease, { signal: ac.signal, onFence: () => (fenced = true) });
    setTimeout(() => ac.abort(), 50);
    expect(await loop).toEqual({ reason: 'aborted' });
    await new Promise((r) => setTimeout(r, 500));
    expect(fenced).toBe(false);
  });
});
