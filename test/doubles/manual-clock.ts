/**
 * A clock tests move by hand, so TTL expiry and lock-delay can be tested
 * without waiting in real time. Listeners run synchronously on advance().
 */
export class ManualClock {
  private t: number;
  private readonly listeners = new Set<() => void>();

  constructor(startMs = Date.UTC(2024, 0, 1)) {
    this.t = startMs;
  }

  now = (): number => this.t;

  advance(ms: number): void {
    if (ms < 0) throw new Error(`cannot move a clock backwards (${ms}ms)`);
    this.t += ms;
    for (const fn of [...this.listeners]) fn();
  }

  onAdvance(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
