import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/store/backoff.js';

describe('Backoff', () => {
  it('doubles from the first wait up to the cap, each wait in the upper half of its step', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 5000, random: () => 0 });
    const high = new Backoff({ initialMs: 100, maxMs: 5000, random: () => 0.999999 });
    const lows = Array.from({ length: 9 }, () => low.next());
    const highs = Array.from({ length: 9 }, () => Math.round(high.next()));
    expect(lows).toEqual([50, 100, 200, 400, 800, 1600, 2500, 2500, 2500]);
    expect(highs).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    expect(low.failures).toBe(9);
    low.reset();
    expect(low.failures).toBe(0);
    expect(low.next()).toBe(50);
  });

  it('spreads the waits of replicas that failed together', () => {
    const waits = Array.from({ length: 50 }, () => {
      const b = new Backoff({ initialMs: 100, maxMs: 5000 });
      for (let i = 0; i < 5; i++) b.next();
      return b.next();
    });
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(1600);
      expect(w).toBeLessThanOrEqual(3200);
    }
    expect(new Set(waits.map((w) => Math.round(w))).size).toBeGreaterThan(10);
  });
});
