import { LeaseError, PrimaryExistsError } from './errors.js';
import { untilAborted } from './handoff.js';
import type { CallOptions, HandoffOptions, Lease, Leaser, PrimaryInfo } from './types.js';

export interface StaticLeaserOptions {
  /** True on the one primary, false on replicas (lease.candidate). */
  candidate: boolean;
  /** On the primary: its own name. On a replica: the primary's name. */
  hostname: string;
  /** On the primary: its own API URL. On a replica: the primary's URL. */
  advertiseURL: string;
}

/** LiteFS keeps a static lease "until the year 3000". */
const STATIC_LEASE_EXPIRES_AT_MS = Date.UTC(3000, 0, 1);

/**
 * A fixed primary (lease.type: static): no election, no failover, no
 * handoff. The candidate node always holds the lease; replicas always see
 * the configured primary.
 */
export class StaticLeaser implements Leaser {
  readonly type = 'static' as const;
  readonly hostname: string;
  readonly candidate: boolean;
  private readonly primaryURL: string;
  private readonly stop = new AbortController();
  private closed = false;

  constructor(opts: StaticLeaserOptions) {
    this.candidate = opts.candidate;
    this.hostname = opts.hostname;
    this.primaryURL = opts.advertiseURL;
  }

  get advertiseURL(): string {
    return this.candidate ? this.primaryURL : '';
  }

  async acquire(_opts?: CallOptions): Promise<Lease> {
    this.checkOpen();
    if (!this.candidate) {
      throw new PrimaryExistsError(`static lease: ${this.hostname} (${this.primaryURL}) is the primary`, this.replicaView());
    }
    return new StaticLease();
  }

  async acquireExisting(_leaseID: string, _opts?: CallOptions): Promise<Lease> {
    throw new LeaseError('ERR_LEASE_HANDOFF_UNSUPPORTED', 'static leases cannot be handed off; use lease.type consul');
  }

  async primaryInfo(_opts?: CallOptions): Promise<PrimaryInfo> {
    this.checkOpen();
    // The primary has no "other" primary to point at.
    if (this.candidate) throw new LeaseError('ERR_LEASE_NO_PRIMARY', 'static lease: this node is the primary');
    return this.replicaView();
  }

  async *watchPrimary(opts: { signal: AbortSignal }): AsyncIterable<PrimaryInfo | null> {
    this.checkOpen();
    yield this.candidate ? null : this.replicaView();
    await untilAborted(AbortSignal.any([opts.signal, this.stop.signal])).catch(() => undefined);
  }

  async clusterID(_opts?: CallOptions): Promise<string | null> {
    return null;
  }

  async setClusterID(_id: string, _opts?: CallOptions): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.stop.abort();
  }

  private replicaView(): PrimaryInfo {
    return { hostname: this.hostname, advertiseURL: this.primaryURL };
  }

  private checkOpen(): void {
    if (this.closed) throw new LeaseError('ERR_LEASE_CLOSED', 'static leaser is closed');
  }
}

export class StaticLease implements Lease {
  readonly id = '';
  readonly renewedAt = new Date(0);
  readonly ttlMs = STATIC_LEASE_EXPIRES_AT_MS;

  async renew(_opts?: CallOptions): Promise<void> {}

  async handoff(_nodeID: bigint, _opts?: HandoffOptions): Promise<void> {
    throw new LeaseError('ERR_LEASE_HANDOFF_UNSUPPORTED', 'static leases cannot be handed off; use lease.type consul');
  }

  /** A static lease never receives handoff requests (LiteFS returns a nil channel). */
  nextHandoff(opts?: CallOptions): Promise<bigint> {
    return untilAborted(opts?.signal);
  }

  async close(): Promise<void> {}
}
