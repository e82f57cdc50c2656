import { describe, expect, it } from 'vitest';
import { ReplicaLag } from '../../src/store/replica-lag.js';

/** A replica's clock (ms) the test moves by hand. */
class Clock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * A healthy stream as the primary sends it: READY, then a heartbeat every
 * second, each taking `transitMs` to arrive. `skewMs` is how far the
 * primary's clock is ahead of the replica's.
 */
function healthy(clock: Clock, lag: ReplicaLag, skewMs: number, transitMs = 2): void {
  lag.connecting();
  lag.ready();
  clock.advance(transitMs);
  lag.heartbeat(clock.t - transitMs + skewMs);
}

describe('ReplicaLag', () => {
  it('counts from startup until the replica has caught up once (never a sentinel)', () => {
    const clock = new Clock();
    const lag = new ReplicaLag({ now: clock.now });
    clock.advance(750);
    expect(lag.lagMs()).toBe(750);
    lag.connecting();
    clock.advance(250);
    expect(lag.lagMs()).toBe(1000);
  });

  for (const skewMs of [0, 3_600_000, -600_000]) {
    it(`an idle, caught-up replica reads ~0 between heartbeats, whatever the clock skew (${skewMs} ms)`, () => {
      const clock = new Clock();
      const lag = new ReplicaLag({ now: clock.now });
      healthy(clock, lag, skewMs);
      for (let beat = 0; beat < 10; beat++) {
        for (let i = 0; i < 10; i++) {
          clock.advance(100);
          expect(lag.lagMs()).toBeLessThanOrEqual(3);
        }
        // Transit varies a little from one heartbeat to the next.
        const transit = 2 + (beat % 3);
        lag.heartbeat(clock.t - transit + skewMs);
      }
      // A transaction committed on the primary 40 ms before it was applied here.
      clock.advance(300);
      lag.applied(clock.t - 40 - 2 + skewMs);
      expect(lag.lagMs()).toBeGreaterThanOrEqual(38);
      expect(lag.lagMs()).toBeLessThanOrEqual(42);
    });
  }

  it('grows once the next heartbeat is overdue (a stalled stream), and drops back when it comes', () => {
    const clock = new Clock();
    const lag = new ReplicaLag({ now: clock.now, silenceAllowanceMs: 1500 });
    healthy(clock, lag, 5000);
    clock.advance(1400);
    expect(lag.lagMs()).toBeLessThan(5);
    clock.advance(200);
    expect(lag.lagMs()).toBeGreaterThanOrEqual(1600);
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(500);
      samples.push(lag.lagMs());
    }
    for (let i = 1; i < samples.length; i++) expect(samples[i]).toBeGreaterThan(samples[i - 1]!);
    lag.heartbeat(clock.t - 2 + 5000);
    expect(lag.lagMs()).toBeLessThan(5);
  });

  it('a replica falling behind reads how late it applies what the primary committed', () => {
    const clock = new Clock();
    const lag = new ReplicaLag({ now: clock.now });
    healthy(clock, lag, -123_456);
    for (let i = 1; i <= 10; i++) {
      clock.advance(100);
      // Each transaction is applied i × 50 ms after its commit.
      lag.applied(clock.t - i * 50 - 2 - 123_456);
      expect(lag.lagMs()).toBeCloseTo(i * 50, 0);
    }
  });

  it('after the stream breaks, counts from the last moment it was known current; READY on a new stream resets it', () => {
    const clock = new Clock();
    const lag = new ReplicaLag({ now: clock.now });
    healthy(clock, lag, 0);
    clock.advance(300);
    lag.disconnected();
    expect(lag.isCaughtUp).toBe(false);
    expect(lag.lagMs()).toBe(300);
    clock.advance(2000);
    lag.connecting();
    // Catching up (a snapshot, LTX files) does not count as being current.
    lag.applied(clock.t);
    expect(lag.lagMs()).toBe(2300);
    lag.ready();
    expect(lag.isCaughtUp).toBe(true);
    expect(lag.lagMs()).toBe(0);
  });

  it('a node that stops being the primary counts from that moment, not from its start', () => {
    const clock = new Clock();
    const lag = new ReplicaLag({ now: clock.now });
    clock.advance(3_600_000);
    lag.steppedDown();
    clock.advance(400);
    expect(lag.lagMs()).toBe(400);
  });
});
