import { LeaseError } from './errors.js';

/**
 * How early a primary stops writing before its lease can expire anywhere.
 *
 * The store (etcd's leader, Consul's servers) starts the TTL no earlier
 * than it receives the renewal we timestamped just before sending, so the
 * lease lives at least TTL of the store's time after that timestamp. Our
 * timer measures TTL − margin on our clock. That holds if
 *   margin ≥ TTL × ρ + L
 * where ρ bounds how much faster the store's clock runs than ours (their
 * rates, not their settings) and L bounds how late our timer callback can
 * run (a busy event loop, a GC pause, a commit already past its check).
 * ρ = 1% is 20× the 500 ppm that NTP lets a disciplined clock slew and 100×
 * a typical crystal's tolerance; L = 200 ms.
 */
export const FENCE_DRIFT_FRACTION = 0.01;
export const FENCE_LATENESS_MS = 200;

/**
 * The margin for a TTL: TTL × 1% + 200 ms (220 ms at 2 s, 300 ms at 10 s).
 * Sub-second TTLs, which only tests use, get at most TTL/4 so a lease is
 * still usable at all.
 */
export function fenceMarginMs(ttlMs: number): number {
  return Math.min(Math.ceil(ttlMs * FENCE_DRIFT_FRACTION) + FENCE_LATENESS_MS, Math.floor(ttlMs / 4));
}

/** setTimeout fires at once for delays above 2^31−1 ms; longer waits are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

export interface FenceOptions {
  ttlMs: number;
  marginMs: number;
  /** Clock of every time passed in (monotonicNow in production). */
  now: () => number;
  /** Runs once, from the timer, when the lease can no longer be trusted. */
  onExpire: () => void;
}

/**
 * A local timer that decides, without asking anyone, when a lease stops
 * being ours: at (start of the last successful renewal) + TTL − margin.
 * It fires even while a renewal hangs on a dead network, which is the
 * point: the network cannot delay the step-down.
 */
export class Fence {
  private validFrom = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private readonly ac = new AbortController();

  constructor(private readonly opts: FenceOptions) {}

  /** When the lease stops being trusted, on `now`'s clock. */
  get deadline(): number {
    return this.validFrom + this.opts.ttlMs - this.opts.marginMs;
  }

  get expired(): boolean {
    return this.ac.signal.aborted;
  }

  /** Aborts (with ERR_LEASE_FENCED) when the fence fires: cancels whatever was waiting on the lease. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /**
   * A renewal that was sent at `startedAt` succeeded: the lease is good
   * until startedAt + TTL − margin. Never moves the deadline backwards, and
   * does nothing once the fence has fired (a late success cannot undo a
   * step-down that other nodes may already rely on).
   */
  extend(startedAt: number): void {
    if (this.expired || startedAt <= this.validFrom) return;
    this.validFrom = startedAt;
    this.arm();
  }

  /** Stops the timer without firing (the lease ended some other way). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    this.stop();
    const left = this.deadline - this.opts.now();
    if (left <= 0) return this.fire();
    this.timer = setTimeout(() => this.arm(), Math.min(left, MAX_TIMER_MS));
  }

  private fire(): void {
    if (this.expired) return;
    this.timer = null;
    this.ac.abort(
      new LeaseError(
        'ERR_LEASE_FENCED',
        `no renewal succeeded within the lease TTL (${this.opts.ttlMs} ms) minus the ${this.opts.marginMs} ms fence margin`,
      ),
    );
    this.opts.onExpire();
  }
}
