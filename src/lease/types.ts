import { LeaseError } from './errors.js';

/**
 * Who the primary is. On the wire (the Consul or etcd key's value, and
 * LiteFS's HTTP API) it is the JSON object {"hostname": ..., "advertise-url": ...}.
 */
export interface PrimaryInfo {
  hostname: string;
  advertiseURL: string;
}

export interface CallOptions {
  /** Aborts the call early; every call also has its own timeout. */
  signal?: AbortSignal;
}

export interface HandoffOptions extends CallOptions {
  /** How long to wait for the lease holder's loop to take the request (default 5000, as LiteFS). */
  timeoutMs?: number;
}

/**
 * Elects the primary. One per node; the store drives it (LiteFS
 * `Store.monitorLease`): read primaryInfo, acquire when there is none and
 * this node is a candidate, renew the lease every ttlMs/2 while primary.
 */
export interface Leaser {
  readonly type: 'static' | 'consul' | 'etcd';
  /** This node's name (on a static replica: the primary's, as in LiteFS). */
  readonly hostname: string;
  /** This node's API URL when it is primary ('' on a static replica, as in LiteFS). */
  readonly advertiseURL: string;
  /** Whether this node may become primary. */
  readonly candidate: boolean;

  /**
   * Tries once to become primary. Rejects with ERR_LEASE_PRIMARY_EXISTS when
   * another node holds the lease (or, with Consul, the key is in lock-delay).
   */
  acquire(opts?: CallOptions): Promise<Lease>;

  /**
   * Takes over a lease another node handed to us (handoff/promote): the
   * lease keeps its ID and the primary key is rewritten with this node's
   * PrimaryInfo without a gap. ERR_LEASE_EXPIRED if the lease is gone,
   * ERR_LEASE_HANDOFF_UNSUPPORTED for static leases.
   */
  acquireExisting(leaseID: string, opts?: CallOptions): Promise<Lease>;

  /** The current primary; rejects with ERR_LEASE_NO_PRIMARY when there is none. */
  primaryInfo(opts?: CallOptions): Promise<PrimaryInfo>;

  /**
   * Yields the current primary (null = none) at once, then again each time
   * it changes, until `signal` aborts or the leaser closes. Consul uses a
   * blocking query, so replicas learn of a new primary within one
   * round-trip, and etcd a watch stream. Transient errors are logged and
   * retried, never thrown.
   */
  watchPrimary(opts: { signal: AbortSignal }): AsyncIterable<PrimaryInfo | null>;

  /** The cluster ID stored with the lease, or null if none is set (static: always null). */
  clusterID(opts?: CallOptions): Promise<string | null>;

  /**
   * Stores the cluster ID once. Setting the same ID again succeeds; a
   * different one fails with ERR_LEASE_CLUSTER_ID_MISMATCH. Static: no-op.
   */
  setClusterID(id: string, opts?: CallOptions): Promise<void>;

  /** Stops watches and releases client resources. Does not release a held lease: close it first. */
  close(): Promise<void>;
}

/** A held primary lease. Renewal is driven by the caller (see runRenewLoop). */
export interface Lease {
  /** Consul session ID, etcd lease ID ('' for static leases); what handoff passes to the new primary. */
  readonly id: string;
  /** When the lease was last known valid: taken just before the create/renew request was sent. */
  readonly renewedAt: Date;
  /** The configured TTL. Consul may keep the session up to twice as long, etcd a little longer; never rely on that. */
  readonly ttlMs: number;

  /** Extends the lease by its TTL; ERR_LEASE_EXPIRED if it no longer exists. */
  renew(opts?: CallOptions): Promise<void>;

  /**
   * Asks the loop that owns this lease to hand it to `nodeID`: resolves
   * once that loop has taken the request via nextHandoff (a rendezvous, like
   * LiteFS's unbuffered HandoffCh); ERR_LEASE_HANDOFF_TIMEOUT otherwise.
   */
  handoff(nodeID: bigint, opts?: HandoffOptions): Promise<void>;

  /**
   * Waits for the next handoff request and returns the target node ID.
   * Never resolves for static leases. Rejects with ERR_LEASE_CLOSED when
   * the lease closes, or with the signal's reason when it aborts.
   */
  nextHandoff(opts?: CallOptions): Promise<bigint>;

  /**
   * Gives the lease up so another candidate can take it at once. Idempotent.
   * Never call it after handing the lease off: the session then belongs to
   * the new primary, and closing it would end that primary's lease.
   */
  close(): Promise<void>;
}

export function encodePrimaryInfo(info: PrimaryInfo): string {
  return JSON.stringify({ hostname: info.hostname, 'advertise-url': info.advertiseURL });
}

/** Parses the {"hostname","advertise-url"} JSON; ERR_LEASE_INVALID_PRIMARY_INFO if it is not that. */
export function decodePrimaryInfo(text: string, where: string): PrimaryInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new LeaseError('ERR_LEASE_INVALID_PRIMARY_INFO', `${where} holds ${JSON.stringify(text.slice(0, 200))}, which is not JSON`, {
      cause: err,
    });
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new LeaseError(
      'ERR_LEASE_INVALID_PRIMARY_INFO',
      `${where} holds ${JSON.stringify(text.slice(0, 200))}, not a {"hostname","advertise-url"} object`,
    );
  }
  const rec = parsed as Record<string, unknown>;
  const hostname = rec['hostname'];
  const advertiseURL = rec['advertise-url'];
  // Go's encoding/json fills absent fields with "", so accept their absence too.
  if ((hostname !== undefined && typeof hostname !== 'string') || (advertiseURL !== undefined && typeof advertiseURL !== 'string')) {
    throw new LeaseError(
      'ERR_LEASE_INVALID_PRIMARY_INFO',
      `${where} holds ${JSON.stringify(text.slice(0, 200))}; hostname and advertise-url must be strings`,
    );
  }
  return { hostname: hostname ?? '', advertiseURL: advertiseURL ?? '' };
}

export function samePrimary(a: PrimaryInfo | null, b: PrimaryInfo | null): boolean {
  if (a === null || b === null) return a === b;
  return a.hostname === b.hostname && a.advertiseURL === b.advertiseURL;
}
