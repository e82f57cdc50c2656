import { describeError, silentLogger, sleep, type Logger } from '../internal/index.js';
import { monotonicNow } from './clock.js';
import { EtcdClient, EtcdCompactedError, type EtcdKV, type EtcdTLS } from './etcd-client.js';
import { parseEtcdEndpoints } from './etcd-endpoints.js';
import { LeaseError, PrimaryExistsError } from './errors.js';
import { HandoffChannel } from './handoff.js';
import {
  decodePrimaryInfo,
  encodePrimaryInfo,
  samePrimary,
  type CallOptions,
  type HandoffOptions,
  type Lease,
  type Leaser,
  type PrimaryInfo,
} from './types.js';

export interface EtcdLeaserOptions {
  /** lease.etcd.endpoints: client URLs of the members, tried in turn. */
  endpoints: readonly string[];
  /** lease.etcd.key: the key naming the primary. */
  key: string;
  hostname: string;
  advertiseURL: string;
  /** Default true. Non-candidates may read and watch but never acquire. */
  candidate?: boolean;
  /** Lease TTL (default 10s); etcd counts whole seconds, so it is rounded up. */
  ttlMs?: number;
  /** CA, client certificate and key for https:// endpoints (file contents). */
  tls?: EtcdTLS;
  /** Timeout of one call to one member (default 5s). */
  requestTimeoutMs?: number;
  /** Pause after a failed watch before watching again (default 500ms). */
  watchRetryMs?: number;
  /** A quiet watch is re-opened after this long, so a silently dead connection cannot hide changes (default 30s). */
  watchRestartMs?: number;
  logger?: Logger;
  /** Clock for renewedAt (default monotonicNow). */
  now?: () => number;
}

export const ETCD_DEFAULTS = {
  ttlMs: 10_000,
  requestTimeoutMs: 5_000,
  watchRetryMs: 500,
  watchRestartMs: 30_000,
} as const;

/**
 * Primary election on etcd: the primary's key is created only if absent
 * (a transaction comparing create_revision with 0), bound to an etcd lease
 * that the primary keeps alive. If the primary stops, etcd deletes the key
 * TTL after the last keep-alive it processed, and the watching candidates
 * race to create it. A clean close revokes the lease, deleting the key at
 * once. Handoff passes the lease ID; the new primary rewrites the value in
 * a transaction guarded on the key still being bound to that lease.
 */
export class EtcdLeaser implements Leaser {
  readonly type = 'etcd' as const;
  readonly hostname: string;
  readonly advertiseURL: string;
  readonly candidate: boolean;
  readonly key: string;
  /** Where the cluster ID lives: `<key>/clusterid`, as with Consul. */
  readonly clusterIDKey: string;
  readonly ttlMs: number;
  readonly now: () => number;

  private readonly client: EtcdClient;
  private readonly watchRetryMs: number;
  private readonly watchRestartMs: number;
  private readonly logger: Logger;
  private readonly stop = new AbortController();
  private closed = false;

  constructor(opts: EtcdLeaserOptions) {
    if (opts.key === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'etcd leaser: a key is required (lease.etcd.key)');
    if (opts.hostname === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'etcd leaser: a hostname is required (lease.hostname)');
    if (opts.advertiseURL === '')
      throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'etcd leaser: an advertise URL is required (lease.advertise-url)');
    const endpoints = parseEtcdEndpoints(opts.endpoints);
    this.hostname = opts.hostname;
    this.advertiseURL = opts.advertiseURL;
    this.candidate = opts.candidate ?? true;
    this.key = opts.key;
    this.clusterIDKey = `${opts.key}/clusterid`;
    this.ttlMs = opts.ttlMs ?? ETCD_DEFAULTS.ttlMs;
    if (!(this.ttlMs >= 1_000)) throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `etcd leaser: TTL ${this.ttlMs} ms is below 1s`);
    this.watchRetryMs = opts.watchRetryMs ?? ETCD_DEFAULTS.watchRetryMs;
    this.watchRestartMs = opts.watchRestartMs ?? ETCD_DEFAULTS.watchRestartMs;
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? monotonicNow;
    this.client = new EtcdClient(endpoints, opts.requestTimeoutMs ?? ETCD_DEFAULTS.requestTimeoutMs, opts.tls);
  }

  get endpoints(): readonly string[] {
    return this.client.endpoints;
  }

  /** etcd's TTL unit is the second. */
  get ttlSeconds(): number {
    return Math.ceil(this.ttlMs / 1000);
  }

  /**
   * Per-member time allowed for a keep-alive: a quarter of the TTL, so a
   * hung member leaves time to try the others before the fence.
   */
  get keepAliveAttemptMs(): number {
    return Math.max(250, Math.min(this.ttlMs / 4, ETCD_DEFAULTS.requestTimeoutMs));
  }

  describe(): string {
    return `etcd ${this.client.endpoints.join(',')} key ${this.key}`;
  }

  async acquire(opts: CallOptions = {}): Promise<Lease> {
    this.checkOpen();
    this.checkCandidate();
    const startedAt = this.now();
    const grant = await this.client.leaseGrant(this.ttlSeconds, opts);
    if (grant.ttlSeconds > this.ttlSeconds) {
      // Safe (the lease outlives our fence) but failover takes longer.
      this.logger.warn(
        { asked: this.ttlSeconds, granted: grant.ttlSeconds },
        'etcd: granted a longer lease TTL than configured (its minimum follows the election timeout)',
      );
    }
    let won = false;
    try {
      const res = await this.client.txn(
        [{ key: this.key, target: 'CREATE', createRevision: 0n }],
        [{ put: { key: this.key, value: encodePrimaryInfo(this), lease: grant.id } }],
        [{ range: { key: this.key } }],
        opts,
      );
      // A retry on another member after a lost answer finds our own key.
      won = res.succeeded || res.ranges[0]?.lease === grant.id;
      if (!won) throw this.primaryExists(res.ranges[0] ?? null);
    } finally {
      if (!won) {
        await this.client
          .leaseRevoke(grant.id, { attemptTimeoutMs: 1_000 })
          .catch((err: unknown) => this.logger.warn({ err: describeError(err), leaseID: grant.id }, 'etcd: cannot revoke unused lease'));
      }
    }
    this.logger.info({ key: this.key, leaseID: grant.id }, 'etcd: primary lease acquired');
    return new EtcdLease(this, this.client, grant.id, startedAt);
  }

  async acquireExisting(leaseID: string, opts: CallOptions = {}): Promise<Lease> {
    this.checkOpen();
    this.checkCandidate();
    const startedAt = this.now();
    if ((await this.client.leaseKeepAlive(leaseID, { ...opts, attemptTimeoutMs: this.keepAliveAttemptMs })) <= 0) {
      throw new LeaseError('ERR_LEASE_EXPIRED', `etcd lease ${leaseID} handed to this node no longer exists`);
    }
    const res = await this.client.txn(
      [{ key: this.key, target: 'LEASE', lease: leaseID }],
      [{ put: { key: this.key, value: encodePrimaryInfo(this), lease: leaseID } }],
      [{ range: { key: this.key } }],
      opts,
    );
    if (!res.succeeded) {
      const current = res.ranges[0] ?? null;
      if (current === null) throw new LeaseError('ERR_LEASE_EXPIRED', `etcd key ${this.key} is gone; lease ${leaseID} no longer holds it`);
      throw this.primaryExists(current);
    }
    this.logger.info({ key: this.key, leaseID }, 'etcd: primary lease taken over by handoff');
    return new EtcdLease(this, this.client, leaseID, startedAt);
  }

  async primaryInfo(opts: CallOptions = {}): Promise<PrimaryInfo> {
    this.checkOpen();
    const { kv } = await this.client.range(this.key, opts);
    const info = this.infoOf(kv);
    if (info === null) throw new LeaseError('ERR_LEASE_NO_PRIMARY', `no primary: etcd key ${this.key} is absent`);
    return info;
  }

  async *watchPrimary(opts: { signal: AbortSignal }): AsyncIterable<PrimaryInfo | null> {
    this.checkOpen();
    const signal = AbortSignal.any([opts.signal, this.stop.signal]);
    let last: PrimaryInfo | null = null;
    let first = true;
    while (!signal.aborted) {
      try {
        const { kv, revision } = await this.client.range(this.key, { signal });
        const info = this.readable(kv);
        if (first || !samePrimary(info, last)) {
          first = false;
          last = info;
          yield info;
        }
        // One stream at a time, re-opened when quiet for watchRestartMs.
        const round = AbortSignal.any([signal, AbortSignal.timeout(this.watchRestartMs)]);
        try {
          for await (const events of this.client.watch(this.key, revision + 1n, round)) {
            const e = events[events.length - 1]!;
            const next = e.type === 'DELETE' ? null : this.readable(e.kv);
            if (!samePrimary(next, last)) {
              last = next;
              yield next;
            }
          }
        } catch (err) {
          if (!(err instanceof EtcdCompactedError)) throw err;
        }
      } catch (err) {
        if (signal.aborted) return;
        this.logger.warn({ err: describeError(err), key: this.key }, 'etcd: watch of primary key failed; retrying');
        try {
          await sleep(this.watchRetryMs, signal);
        } catch {
          return;
        }
      }
    }
  }

  async clusterID(opts: CallOptions = {}): Promise<string | null> {
    this.checkOpen();
    const { kv } = await this.client.range(this.clusterIDKey, opts);
    return kv === null || kv.value === '' ? null : kv.value;
  }

  /** Write-once: created only if absent, in one transaction, so racing nodes cannot both win. */
  async setClusterID(id: string, opts: CallOptions = {}): Promise<void> {
    this.checkOpen();
    if (id === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'cluster ID must not be empty');
    const res = await this.client.txn(
      [{ key: this.clusterIDKey, target: 'CREATE', createRevision: 0n }],
      [{ put: { key: this.clusterIDKey, value: id } }],
      [{ range: { key: this.clusterIDKey } }],
      opts,
    );
    const existing = res.ranges[0]?.value ?? null;
    if (res.succeeded || existing === id) return;
    throw new LeaseError(
      'ERR_LEASE_CLUSTER_ID_MISMATCH',
      `etcd key ${this.clusterIDKey} already holds cluster ID ${JSON.stringify(existing)}; refusing to set ${JSON.stringify(id)}`,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort(new LeaseError('ERR_LEASE_CLOSED', 'etcd leaser closed'));
    await this.client.close();
  }

  private infoOf(kv: EtcdKV | null): PrimaryInfo | null {
    if (kv === null || kv.value === '') return null;
    return decodePrimaryInfo(kv.value, `etcd key ${this.key}`);
  }

  private readable(kv: EtcdKV | null): PrimaryInfo | null {
    try {
      return this.infoOf(kv);
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'etcd: ignoring unreadable primary key');
      return null;
    }
  }

  private primaryExists(current: EtcdKV | null): PrimaryExistsError {
    let holder: PrimaryInfo | undefined;
    try {
      holder = this.infoOf(current) ?? undefined;
    } catch {
      // The error is about the key being taken, not about its value.
    }
    const why =
      holder !== undefined
        ? `${holder.hostname} (${holder.advertiseURL}) holds the primary lease at etcd key ${this.key}`
        : `etcd key ${this.key} is held by lease ${current?.lease ?? '?'}`;
    return new PrimaryExistsError(why, holder);
  }

  private checkOpen(): void {
    if (this.closed) throw new LeaseError('ERR_LEASE_CLOSED', 'etcd leaser is closed');
  }

  private checkCandidate(): void {
    if (!this.candidate)
      throw new LeaseError('ERR_LEASE_NOT_CANDIDATE', `${this.hostname} is not a lease candidate (lease.candidate: false)`);
  }
}

/** A held etcd lease bound to the primary key. Renewal is the caller's job (runRenewLoop). */
export class EtcdLease implements Lease {
  readonly ttlMs: number;
  private renewedAtMs: number;
  private readonly handoffs: HandoffChannel;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly leaser: EtcdLeaser,
    private readonly client: EtcdClient,
    readonly id: string,
    renewedAtMs: number,
  ) {
    this.ttlMs = leaser.ttlMs;
    this.renewedAtMs = renewedAtMs;
    this.handoffs = new HandoffChannel(`etcd lease ${id}`);
  }

  get renewedAt(): Date {
    return new Date(this.renewedAtMs);
  }

  /**
   * One keep-alive, then a check that the key is still bound to this
   * lease: a key deleted by hand while the lease lives would otherwise let
   * a second node in. The TTL restarts between send and reply, so the
   * timestamp taken before sending under-estimates the lease, never over.
   */
  async renew(opts: CallOptions = {}): Promise<void> {
    if (this.closing !== null) throw new LeaseError('ERR_LEASE_CLOSED', `etcd lease ${this.id} is closed`);
    const startedAt = this.leaser.now();
    const call = { ...opts, attemptTimeoutMs: this.leaser.keepAliveAttemptMs };
    if ((await this.client.leaseKeepAlive(this.id, call)) <= 0) {
      throw new LeaseError('ERR_LEASE_EXPIRED', `etcd lease ${this.id} for ${this.leaser.key} has expired`);
    }
    const { kv } = await this.client.range(this.leaser.key, call);
    if (kv === null || kv.lease !== this.id) {
      throw new LeaseError('ERR_LEASE_EXPIRED', `etcd key ${this.leaser.key} is no longer bound to lease ${this.id}`);
    }
    this.renewedAtMs = startedAt;
  }

  handoff(nodeID: bigint, opts: HandoffOptions = {}): Promise<void> {
    return this.handoffs.send(nodeID, opts.timeoutMs ?? 5_000, opts.signal);
  }

  nextHandoff(opts: CallOptions = {}): Promise<bigint> {
    return this.handoffs.receive(opts.signal);
  }

  /** Revokes the lease: etcd deletes the key at once, so a watching candidate takes over without waiting for the TTL. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.handoffs.close();
    try {
      await this.client.leaseRevoke(this.id, { attemptTimeoutMs: Math.min(2_000, this.ttlMs) });
    } catch (err) {
      throw new LeaseError('ERR_LEASE_ETCD', `cannot revoke etcd lease ${this.id}: ${describeError(err)}`, { cause: err });
    }
  }
}
