import { EventEmitter } from 'node:events';
import { describeError, formatNodeID, withTimeout, type Logger } from '../internal/index.js';
import { isLeaseError, monotonicNow, PrimaryExistsError, runRenewLoop, type Lease, type Leaser, type PrimaryInfo } from '../lease/index.js';
import type { Store } from './store.js';

/** How a replica's stream to the primary ended. */
export type ReplicaEnd = { reason: 'end' } | { reason: 'handoff'; leaseID: string } | { reason: 'error'; error: unknown };

export interface ReplicaHooks {
  onReady(): void;
  onContact(primaryTimeMs: number): void;
  /** Data is arriving (or being applied): keeps the silent-primary watchdog quiet without touching `.lag`. */
  onActivity(): void;
}

export interface LeaseMonitorOptions {
  store: Store;
  leaser: Leaser;
  logger: Logger;
  /** Pause before re-reading the lease after a failure (lease.reconnect-delay). */
  reconnectDelayMs: number;
  /** Follows the primary's stream until it ends (the HTTP stream client). */
  connect(primary: PrimaryInfo, signal: AbortSignal, hooks: ReplicaHooks): Promise<ReplicaEnd>;
  /** Keeps the target's stream alive through the step-down (the stream server). */
  prepareHandoff(nodeID: bigint): boolean;
  /** Sends the lease ID to the target once it has every change (the stream server). */
  handoffTo(nodeID: bigint, leaseID: string): Promise<void>;
  /**
   * On a clean shutdown: keeps the replicas' streams open through the
   * step-down and resolves once each has every transaction this node
   * committed (after `settled`), or after `timeoutMs`; then ends them.
   */
  drainReplicas?(settled: Promise<void>, timeoutMs: number): Promise<void>;
  /** A replica drops a silent primary after this long without a heartbeat. */
  primaryTimeoutMs?: number;
}

export interface MonitorEvents {
  /** This node's role or the primary it follows changed. */
  primaryChange: [{ isPrimary: boolean; primary: PrimaryInfo | null }];
  /** Primary, or replica caught up: the node can serve its apps (exec, proxy). */
  ready: [];
}

const MIN_RETRY_MS = 100;
/** How long a clean shutdown waits for replicas to receive the last transactions before releasing the lease. */
const DRAIN_TIMEOUT_MS = 2000;
/** Retry interval while the lease key sits in its lock-delay. */
const LOCK_DELAY_RETRY_MS = 200;

/**
 * Decides, again and again, what this node is (LiteFS `Store.monitorLease`):
 * with a primary somewhere, follow it as a replica; with none, try to
 * become it when this node is a candidate; while primary, renew the lease
 * every TTL/2 and step down the moment it cannot be trusted, or hand it to
 * a replica that asked for it.
 */
export class LeaseMonitor extends EventEmitter<MonitorEvents> {
  private readonly opts: LeaseMonitorOptions;
  private readonly log: Logger;
  private readonly stopper = new AbortController();
  private loop: Promise<void> | null = null;
  private lease: Lease | null = null;
  private handoffLease: string | null = null;
  private _primary: PrimaryInfo | null = null;
  private _ready = false;
  private lastContact: number | null = null;
  private _isPrimary = false;
  /** The last stream failure warned about; cleared by contact with a primary. */
  private lastStreamFailure: string | null = null;

  constructor(opts: LeaseMonitorOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger.child({ component: 'lease' });
  }

  get isPrimary(): boolean {
    return this._isPrimary;
  }

  /** The primary this replica follows while connected; null otherwise. */
  get primary(): PrimaryInfo | null {
    return this._primary;
  }

  get ready(): boolean {
    return this._ready;
  }

  get currentLease(): Lease | null {
    return this.lease;
  }

  get leaser(): Leaser {
    return this.opts.leaser;
  }

  /** ms since the primary was last heard from; 0 on the primary; null before the first sync. */
  lagMs(): number | null {
    if (this._isPrimary) return 0;
    if (this.lastContact === null) return null;
    return Math.max(0, Date.now() - this.lastContact);
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.log.error({ err }, 'lease loop failed'));
  }

  /** Waits until primary or caught up with a primary, or the signal aborts. */
  waitReady(signal?: AbortSignal): Promise<boolean> {
    if (this._ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onReady = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = (): void => {
        this.off('ready', onReady);
        resolve(false);
      };
      this.once('ready', onReady);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Releases the lease (a candidate takes over at once) and stops following. */
  async stop(): Promise<void> {
    this.stopper.abort(new Error('stopping'));
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    let failures = 0;
    while (!signal.aborted) {
      let failed = false;
      let lockDelayed = false;
      try {
        if (this.handoffLease !== null) {
          const id = this.handoffLease;
          this.handoffLease = null;
          try {
            const validFrom = monotonicNow();
            const lease = await this.opts.leaser.acquireExisting(id, { signal });
            this.log.info('took over the lease handed to this node');
            await this.runPrimary(lease, validFrom);
            continue;
          } catch (err) {
            this.log.warn({ err }, `could not take the handed-off lease: ${describeError(err)}`);
          }
        }
        let primary: PrimaryInfo | null = null;
        try {
          primary = await this.opts.leaser.primaryInfo({ signal });
        } catch (err) {
          if (!isLeaseError(err, 'ERR_LEASE_NO_PRIMARY')) throw err;
        }
        if (primary === null) {
          if (this.opts.leaser.candidate) {
            try {
              const validFrom = monotonicNow();
              const lease = await this.opts.leaser.acquire({ signal });
              await this.runPrimary(lease, validFrom);
              failures = 0;
              continue;
            } catch (err) {
              if (!isLeaseError(err, 'ERR_LEASE_PRIMARY_EXISTS')) throw err;
              // Refused with nobody holding the key: the old primary's
              // lock-delay. It ends within a second; a full reconnect delay
              // on top of it would slow every failover.
              lockDelayed = err instanceof PrimaryExistsError && err.primary === undefined;
            }
          }
          failed = true;
        } else if (this.isSelf(primary)) {
          // The lease still names this node: one it just handed off (the new
          // primary has not rewritten the key yet) or held before a restart
          // (it expires after its TTL). Following ourselves cannot work;
          // wait for the key to change.
          this.log.debug('the primary lease still names this node; waiting for it to change');
          failed = true;
        } else {
          const end = await this.runReplica(primary);
          if (end.reason === 'handoff') {
            this.handoffLease = end.leaseID;
            failures = 0;
            continue;
          }
          if (end.reason === 'error') {
            failed = true;
            if (!signal.aborted) this.logStreamFailure(primary, end.error);
          } else {
            failures = 0;
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        failed = true;
        this.log.warn({ err }, `lease check failed: ${describeError(err)}`);
      }
      if (signal.aborted) break;
      failures = failed ? failures + 1 : 0;
      const backoff = lockDelayed ? LOCK_DELAY_RETRY_MS : MIN_RETRY_MS * 2 ** Math.min(failures, 10);
      const delay = Math.min(this.opts.reconnectDelayMs, backoff);
      await this.pause(delay);
    }
  }

  /**
   * Once per outage at warn (a refused token would otherwise be logged at
   * every retry); the same failure again is debug until the primary is
   * heard from, or the failure changes.
   */
  private logStreamFailure(primary: PrimaryInfo, error: unknown): void {
    const text = `replication stream failed: ${describeError(error)}`;
    const key = `${primary.hostname} ${primary.advertiseURL} ${text}`;
    if (key === this.lastStreamFailure) {
      this.log.debug({ primary: primary.hostname }, text);
      return;
    }
    this.lastStreamFailure = key;
    this.log.warn(
      { primary: primary.hostname, url: primary.advertiseURL },
      `${text} (retrying with backoff; logged once until it changes)`,
    );
  }

  private isSelf(primary: PrimaryInfo): boolean {
    const { leaser } = this.opts;
    return leaser.advertiseURL !== '' && primary.advertiseURL === leaser.advertiseURL && primary.hostname === leaser.hostname;
  }

  /**
   * Sleeps, but wakes early when the lease key changes, so a replica
   * notices a failed primary's lease expiring without waiting a full delay.
   */
  private async pause(ms: number): Promise<void> {
    const ac = new AbortController();
    const signal = AbortSignal.any([ac.signal, this.stopper.signal]);
    const timer = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
    const watch = (async () => {
      try {
        let first = true;
        for await (const _ of this.opts.leaser.watchPrimary({ signal })) {
          if (!first) return;
          first = false;
        }
      } catch {
        /* the timer decides */
      }
    })();
    await Promise.race([timer, watch]);
    ac.abort();
  }

  /** `validFrom`: when the acquire request was sent (monotonicNow), where the lease's fence starts. */
  private async runPrimary(lease: Lease, validFrom: number): Promise<void> {
    const signal = this.stopper.signal;
    this.lease = lease;
    this._isPrimary = true;
    this._primary = null;
    this.opts.store.setPrimary(true);
    this.log.info({ lease: lease.id || 'static' }, 'this node is now the primary');
    this.emit('primaryChange', { isPrimary: true, primary: null });
    this.setReady();
    const inner = new AbortController();
    const both = AbortSignal.any([signal, inner.signal]);
    let handedOff = false;
    try {
      const renewal = runRenewLoop(lease, {
        signal: both,
        logger: this.log,
        validFrom,
        // The fence's timer, not the renewal's outcome: it fires even while
        // a renewal hangs on a dead network, before any other node can get
        // the lease.
        onFence: () => this.stopWriting('fenced: no lease renewal succeeded within TTL minus the fence margin'),
      });
      const handoff = lease.nextHandoff({ signal: both }).then(
        (nodeID) => ({ nodeID }),
        () => null,
      );
      const first = await Promise.race([renewal.then((r) => ({ renewal: r })), handoff.then((h) => ({ handoff: h }))]);
      if ('handoff' in first && first.handoff !== null) {
        handedOff = await this.handOff(lease, first.handoff.nodeID);
      } else if ('renewal' in first && first.renewal.reason === 'expired') {
        this.log.error({ err: first.renewal.error }, 'lost the lease; stepping down');
      }
    } finally {
      inner.abort();
      this.lease = null;
      if (signal.aborted && !handedOff && this._isPrimary) await this.drainBeforeRelease();
      this.stopWriting('stepping down');
      this._ready = false;
      this.lastContact = null;
      if (!handedOff) await lease.close().catch((err: unknown) => this.log.warn({ err }, 'releasing the lease failed'));
      this.emit('primaryChange', { isPrimary: false, primary: null });
      await this.opts.store
        .recoverAfterRoleChange()
        .catch((err: unknown) => this.log.error({ err }, 'recovery after stepping down failed'));
    }
  }

  /**
   * A clean shutdown of the primary: stop writing, let the commits in
   * flight finish and the replicas receive them, then let the lease go. A
   * replica that takes over then has every acknowledged transaction (when
   * it could keep up within the bound).
   */
  private async drainBeforeRelease(): Promise<void> {
    const drain = this.opts.drainReplicas;
    if (drain === undefined) return;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const drained = drain(settled, DRAIN_TIMEOUT_MS).catch((err: unknown) => this.log.warn({ err }, 'draining replicas failed'));
    this.stopWriting('shutting down');
    await this.waitForCommits(DRAIN_TIMEOUT_MS);
    settle();
    await drained;
  }

  /** Refuses writes from now on; logs the moment once per term (tests and operators order role changes by it). */
  private stopWriting(reason: string): void {
    const was = this.opts.store.isPrimary;
    this._isPrimary = false;
    this.opts.store.setPrimary(false);
    if (was) this.log.warn({ reason }, 'this node no longer accepts writes');
  }

  /** Steps down and passes the lease to `nodeID`; false if that failed (the lease is then released). */
  private async handOff(lease: Lease, nodeID: bigint): Promise<boolean> {
    const target = formatNodeID(nodeID);
    if (!this.opts.prepareHandoff(nodeID)) {
      this.log.warn({ target }, 'handoff target is not connected');
      return false;
    }
    // No write may land after the target's last catch-up: stop writing first.
    this.stopWriting('handing the lease off');
    try {
      // A commit that passed its writeable check just before the step-down
      // is still being written; its client is acknowledged once it ends.
      // Let it reach the store (and the target's stream) before HANDOFF.
      await this.waitForCommits(5000);
      await lease.renew();
      await withTimeout(this.opts.handoffTo(nodeID, lease.id), 5000, 'sending the handoff');
      this.log.info({ target }, 'handed the lease off');
      return true;
    } catch (err) {
      this.log.error({ err, target }, `handoff failed: ${describeError(err)}`);
      return false;
    }
  }

  /**
   * Waits until every commit that was already being recorded when this
   * node stopped being writeable has finished: commits run one at a time
   * per database, and every later one is refused.
   */
  private async waitForCommits(timeoutMs: number): Promise<void> {
    for (const db of this.opts.store.databases()) {
      try {
        await withTimeout(db.settle(), timeoutMs, `waiting for ${db.name}'s commit in flight`);
      } catch (err) {
        this.log.warn({ db: db.name, err }, `a commit is still being recorded after ${timeoutMs} ms; handing off anyway`);
      }
    }
  }

  private async runReplica(primary: PrimaryInfo): Promise<ReplicaEnd> {
    const signal = this.stopper.signal;
    const ac = new AbortController();
    const both = AbortSignal.any([signal, ac.signal]);
    this._primary = primary;
    this.lastContact = null;
    this.emit('primaryChange', { isPrimary: false, primary });
    const timeout = this.opts.primaryTimeoutMs ?? 10_000;
    let watchdog: NodeJS.Timeout | null = null;
    const arm = (): void => {
      if (watchdog !== null) clearTimeout(watchdog);
      watchdog = setTimeout(() => ac.abort(new Error(`no word from the primary for ${timeout} ms`)), timeout);
      watchdog.unref();
    };
    arm();
    try {
      return await this.opts.connect(primary, both, {
        onReady: () => {
          this.lastContact = Date.now();
          this.lastStreamFailure = null;
          this.setReady();
        },
        onContact: () => {
          // Our own clock: the primary's may be skewed; the lag is how long
          // since we last heard from it.
          this.lastContact = Date.now();
          this.lastStreamFailure = null;
          arm();
        },
        onActivity: arm,
      });
    } finally {
      if (watchdog !== null) clearTimeout(watchdog);
      // `ready` stays latched and `.lag` keeps growing from the last contact
      // while we reconnect: the data is still there, only getting older.
      this._primary = null;
      this.emit('primaryChange', { isPrimary: false, primary: null });
    }
  }

  private setReady(): void {
    if (this._ready) return;
    this._ready = true;
    this.emit('ready');
  }
}
