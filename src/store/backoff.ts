export interface BackoffOptions {
  /** The first wait. */
  initialMs: number;
  /** No wait is longer than this. */
  maxMs: number;
  /** [0, 1); Math.random by default. */
  random?: () => number;
}

/**
 * Waits between attempts to reach something that failed: doubling from
 * `initialMs` up to `maxMs`, each drawn from the upper half of that step
 * ("equal jitter"), so replicas that lost the same primary at the same
 * moment do not knock on its door in lockstep when it comes back.
 */
export class Backoff {
  private step = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** Attempts that failed since the last reset. */
  get failures(): number {
    return this.step;
  }

  next(): number {
    const { initialMs, maxMs } = this.opts;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.step, 30));
    this.step++;
    return base / 2 + (this.opts.random ?? Math.random)() * (base / 2);
  }

  reset(): void {
    this.step = 0;
  }
}
