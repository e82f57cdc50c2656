/**
 * Building blocks for the event-driven waits of a ProxyBackend: the code
 * that changes a TXID or the primary calls `notify`, and waiters wake at
 * once instead of polling. Every waiter is removed when its signal aborts,
 * so a client that disconnects leaves nothing behind.
 */

interface TXIDWaiter {
  target: bigint;
  resolve: (ok: boolean) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/** Waiters for "database D reached TXID N", keyed by database name. */
export class TXIDWaiters {
  private readonly byDB = new Map<string, Set<TXIDWaiter>>();
  private count = 0;

  /**
   * Resolves true once `notify(db, txid)` reports txid >= target (or at once
   * when `current()` already does), false when `signal` aborts first.
   */
  wait(db: string, target: bigint, current: () => bigint | null, signal: AbortSignal): Promise<boolean> {
    const now = current();
    if (now !== null && now >= target) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let set = this.byDB.get(db);
      if (set === undefined) {
        set = new Set();
        this.byDB.set(db, set);
      }
      const waiter: TXIDWaiter = {
        target,
        signal,
        resolve,
        onAbort: () => {
          this.remove(db, waiter);
          resolve(false);
        },
      };
      set.add(waiter);
      this.count++;
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    });
  }

  /** Wakes every waiter on `db` whose target is at or below `txid`. */
  notify(db: string, txid: bigint): void {
    const set = this.byDB.get(db);
    if (set === undefined) return;
    for (const w of set) {
      if (w.target <= txid) {
        this.remove(db, w);
        w.resolve(true);
      }
    }
  }

  /** Number of pending waits (all databases). */
  get size(): number {
    return this.count;
  }

  private remove(db: string, w: TXIDWaiter): void {
    const set = this.byDB.get(db);
    if (set === undefined || !set.delete(w)) return;
    this.count--;
    w.signal.removeEventListener('abort', w.onAbort);
    if (set.size === 0) this.byDB.delete(db);
  }
}

interface ConditionWaiter {
  check: () => boolean;
  resolve: () => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/**
 * Waiters for an arbitrary condition (e.g. "a primary is known"), re-checked
 * on every `notify()`. Resolves (never rejects) when the condition holds or
 * the signal aborts; callers re-read the state.
 */
export class ConditionWaiters {
  private readonly waiters = new Set<ConditionWaiter>();

  wait(check: () => boolean, signal: AbortSignal): Promise<void> {
    if (check() || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: ConditionWaiter = {
        check,
        resolve,
        signal,
        onAbort: () => {
          this.remove(waiter);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    });
  }

  notify(): void {
    for (const w of this.waiters) {
      if (w.check()) {
        this.remove(w);
        w.resolve();
      }
    }
  }

  get size(): number {
    return this.waiters.size;
  }

  private remove(w: ConditionWaiter): void {
    if (!this.waiters.delete(w)) return;
    w.signal.removeEventListener('abort', w.onAbort);
  }
}
