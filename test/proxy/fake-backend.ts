import type { ProxyBackend } from '../../src/http/proxy/backend.js';
import { ConditionWaiters, TXIDWaiters } from '../../src/http/proxy/waiters.js';

/** An in-memory ProxyBackend the test drives: who is primary, TXIDs, lag. */
export class FakeBackend implements ProxyBackend {
  private primary = false;
  private primaryURL: string | null = null;
  private lag = 0;
  private readonly txids = new Map<string, bigint>();
  private readonly txidWaiters = new TXIDWaiters();
  private readonly primaryWaiters = new ConditionWaiters();
  private readonly waitStarted: ((info: { db: string; target: bigint }) => void)[] = [];
  /** Every waitForTXID call, in order. */
  readonly txidWaits: { db: string; target: bigint }[] = [];
  primaryWaits = 0;

  static primary(txids: Record<string, bigint> = {}): FakeBackend {
    const b = new FakeBackend();
    b.primary = true;
    for (const [db, t] of Object.entries(txids)) b.txids.set(db, t);
    return b;
  }

  static replica(primaryURL: string | null, txids: Record<string, bigint> = {}): FakeBackend {
    const b = new FakeBackend();
    b.primaryURL = primaryURL;
    for (const [db, t] of Object.entries(txids)) b.txids.set(db, t);
    return b;
  }

  isPrimary(): boolean {
    return this.primary;
  }

  primaryProxyURL(): string | null {
    return this.primary ? null : this.primaryURL;
  }

  waitForPrimary(signal: AbortSignal): Promise<void> {
    this.primaryWaits++;
    return this.primaryWaiters.wait(() => this.primary || this.primaryURL !== null, signal);
  }

  txid(db: string): bigint | null {
    return this.txids.get(db) ?? null;
  }

  waitForTXID(db: string, target: bigint, signal: AbortSignal): Promise<boolean> {
    const info = { db, target };
    this.txidWaits.push(info);
    const p = this.txidWaiters.wait(db, target, () => this.txid(db), signal);
    for (const cb of this.waitStarted.splice(0)) cb(info);
    return p;
  }

  lagMs(): number {
    return this.primary ? 0 : this.lag;
  }

  // ---- test controls ----

  setTXID(db: string, txid: bigint): void {
    this.txids.set(db, txid);
    this.txidWaiters.notify(db, txid);
  }

  setPrimaryURL(url: string | null): void {
    this.primaryURL = url;
    this.primaryWaiters.notify();
  }

  setLag(ms: number): void {
    this.lag = ms;
  }

  /** Pending waitForTXID calls. */
  get pendingTXIDWaits(): number {
    return this.txidWaiters.size;
  }

  get pendingPrimaryWaits(): number {
    return this.primaryWaiters.size;
  }

  /** Resolves on the next waitForTXID call. */
  nextTXIDWait(): Promise<{ db: string; target: bigint }> {
    return new Promise((resolve) => this.waitStarted.push(resolve));
  }
}
