import { CodedError } from '../internal/index.js';

/**
 * A lock holder that is the daemon itself (apply, recovery, snapshots).
 * Kernel lock owners are u64 values (bigint); an object can never be equal
 * to one, so internal holders cannot collide with any client.
 */
export class InternalLockOwner {
  static #seq = 0;
  readonly id: number;
  readonly label: string;

  constructor(label: string) {
    this.id = ++InternalLockOwner.#seq;
    this.label = label;
  }

  toString(): string {
    return `internal:${this.label}#${this.id}`;
  }
}

/** A FUSE `lock_owner` (u64) or the daemon. */
export type LockOwner = bigint | InternalLockOwner;

export type LockMode = 'shared' | 'exclusive';
export type MutexState = 'unlocked' | 'shared' | 'exclusive';

export type LockErrorCode = 'ERR_LOCK_TIMEOUT' | 'ERR_LOCK_ABORTED';

export class LockError extends CodedError<LockErrorCode> {}

export interface LockHolder {
  owner: LockOwner;
  mode: LockMode;
}

export function describeOwner(owner: LockOwner): string {
  return typeof owner === 'bigint' ? `0x${owner.toString(16)}` : owner.toString();
}

/**
 * Owner-aware reader/writer lock for one SQLite lock byte, with LiteFS's
 * semantics: exclusive is granted when nobody *else* holds the lock (so a
 * sole reader upgrades), a shared request from the exclusive holder
 * downgrades, and unlock is idempotent. Everything is non-blocking except
 * `lock`/`rlock`, which the daemon uses for its own acquisitions.
 *
 * Writer preference: while an owner waits in `lock`, other owners cannot
 * newly acquire (shared or exclusive), so a stream of new readers cannot
 * starve it. Existing holders keep their locks and may still downgrade or
 * release.
 */
export class RWMutex {
  readonly name: string;
  #exclusive: LockOwner | null = null;
  readonly #shared = new Set<LockOwner>();
  /** Owners waiting in lock(), first come first served. */
  readonly #intents: LockOwner[] = [];
  #waiters = new Set<() => void>();

  constructor(name = '') {
    this.name = name;
  }

  state(): MutexState {
    if (this.#exclusive !== null) return 'exclusive';
    return this.#shared.size > 0 ? 'shared' : 'unlocked';
  }

  holders(): LockHolder[] {
    if (this.#exclusive !== null) return [{ owner: this.#exclusive, mode: 'exclusive' }];
    return [...this.#shared].map((owner) => ({ owner, mode: 'shared' as const }));
  }

  /** Owners currently waiting for exclusive access (writer preference in effect). */
  waiting(): LockOwner[] {
    return [...this.#intents];
  }

  modeOf(owner: LockOwner): LockMode | null {
    if (this.#exclusive === owner) return 'exclusive';
    return this.#shared.has(owner) ? 'shared' : null;
  }

  /** True if another owner holds exclusively: what F_GETLK reports as a write lock. */
  heldExclusivelyByOther(owner: LockOwner): boolean {
    return this.#exclusive !== null && this.#exclusive !== owner;
  }

  #blockedByIntent(owner: LockOwner): boolean {
    return this.#intents.length > 0 && this.#intents[0] !== owner;
  }

  canLock(owner: LockOwner): boolean {
    if (this.#exclusive === owner) return true;
    if (this.#exclusive !== null) return false;
    for (const s of this.#shared) if (s !== owner) return false;
    return !this.#blockedByIntent(owner);
  }

  canRLock(owner: LockOwner): boolean {
    if (this.#exclusive === owner || this.#shared.has(owner)) return true;
    if (this.#exclusive !== null) return false;
    return !this.#intents.some((o) => o !== owner);
  }

  /** Exclusive, non-blocking. A sole reader upgrades; a holder re-locking is a no-op. */
  tryLock(owner: LockOwner): boolean {
    if (!this.canLock(owner)) return false;
    this.#shared.delete(owner);
    this.#exclusive = owner;
    return true;
  }

  /** Shared, non-blocking. The exclusive holder downgrades (and others may then read). */
  tryRLock(owner: LockOwner): boolean {
    if (!this.canRLock(owner)) return false;
    if (this.#exclusive === owner) {
      this.#exclusive = null;
      this.#shared.add(owner);
      this.#notify();
      return true;
    }
    this.#shared.add(owner);
    return true;
  }

  /** Releases whatever `owner` holds; returns whether it held anything. */
  unlock(owner: LockOwner): boolean {
    if (this.#exclusive === owner) {
      this.#exclusive = null;
    } else if (!this.#shared.delete(owner)) {
      return false;
    }
    this.#notify();
    return true;
  }

  /**
   * Sets `owner` back to `mode` while undoing a partially granted request in
   * the same synchronous step. Unlike tryLock it ignores waiting intents: the
   * owner had this mode a moment ago and must get exactly it back.
   */
  revert(owner: LockOwner, mode: LockMode | null): void {
    const now = this.modeOf(owner);
    if (now === mode) return;
    if (mode === null) {
      this.unlock(owner);
      return;
    }
    for (const h of this.holders()) {
      if (h.owner !== owner && (mode === 'exclusive' || h.mode === 'exclusive')) {
        throw new Error(`cannot revert ${describeOwner(owner)} to ${mode} on ${this.name}: held by ${describeOwner(h.owner)}`);
      }
    }
    if (mode === 'exclusive') {
      this.#shared.delete(owner);
      this.#exclusive = owner;
    } else {
      this.#exclusive = null;
      this.#shared.add(owner);
      this.#notify();
    }
  }

  /** True if an owner other than `owner` holds the lock in any mode. */
  heldByOther(owner: LockOwner): boolean {
    if (this.#exclusive !== null) return this.#exclusive !== owner;
    for (const s of this.#shared) if (s !== owner) return true;
    return false;
  }

  /**
   * Resolves at the next release or downgrade (or intent withdrawal); rejects
   * with the signal's reason on abort. No polling: waiters are woken by the
   * state change itself.
   */
  waitForChange(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.#waiters.delete(wake);
        reject(signal?.reason);
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#waiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Exclusive, waiting until granted. Registers an intent first, which keeps
   * new acquisitions by others out (writer preference). Rejects with the
   * signal's reason on abort, holding nothing new.
   */
  async lock(owner: LockOwner, signal?: AbortSignal): Promise<void> {
    if (this.tryLock(owner)) return;
    signal?.throwIfAborted();
    this.#intents.push(owner);
    try {
      while (!this.tryLock(owner)) await this.waitForChange(signal);
    } finally {
      const i = this.#intents.indexOf(owner);
      if (i >= 0) this.#intents.splice(i, 1);
      // Withdrawing the intent may let blocked readers or the next waiter in.
      this.#notify();
    }
  }

  /** Shared, waiting until granted (no intent: readers never block writers). */
  async rlock(owner: LockOwner, signal?: AbortSignal): Promise<void> {
    while (!this.tryRLock(owner)) await this.waitForChange(signal);
  }

  #notify(): void {
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const w of waiters) w();
  }

  toString(): string {
    const h = this.holders()
      .map((x) => `${describeOwner(x.owner)}:${x.mode}`)
      .join(',');
    return `${this.name || 'mutex'}(${this.state()}${h ? ` ${h}` : ''})`;
  }
}
