import { sleep } from '../internal/index.js';

/**
 * Rate limit for blocking-query loops, as Consul's docs advise: a burst of
 * requests proceeds at once, then at most one per interval, so a key that
 * churns cannot turn the watch into a busy loop while a quiet key is seen
 * without delay.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  async take(signal?: AbortSignal): Promise<void> {
    this.refill();
    if (this.tokens < 1) {
      await sleep(Math.ceil((1 - this.tokens) * this.intervalMs), signal);
      this.refill();
    }
    this.tokens = Math.max(0, this.tokens - 1);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.updatedAt) / this.intervalMs);
    this.updatedAt = t;
  }
}
