import { formatGoDuration } from '../config/index.js';
import { describeError, silentLogger, sleep, type Logger } from '../internal/index.js';
import { ConsulClient, type KVEntry } from './consul-client.js';
import { joinKey, parseConsulURL, redact, type ConsulEndpoint } from './consul-url.js';
import { LeaseError, PrimaryExistsError, isLeaseError } from './errors.js';
import { HandoffChannel } from './handoff.js';
import { TokenBucket } from './token-bucket.js';
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

export interface ConsulLeaserOptions {
  /** lease.consul.url: agent, ACL token (password) and key prefix (path). */
  url: string;
  /** lease.consul.key, joined under the URL's prefix. */
  key: string;
  hostname: string;
  advertiseURL: string;
  /** Default true. Non-candidates may read and watch but never acquire. */
  candidate?: boolean;
  /** Session TTL (default 10s, Consul's default minimum). */
  ttlMs?: number;
  /** Session lock-delay (default 1s). */
  lockDelayMs?: number;
  /** Consul session name (default "litefs", as LiteFS). */
  sessionName?: string;
  /** Timeout of every non-blocking Consul call (default 5s). */
  requestTimeoutMs?: number;
  /** How long one watchPrimary blocking query waits (default 30s). */
  watchWaitMs?: number;
  /** Pause after a failed watch query (default 1s). */
  watchRetryMs?: number;
  /** Watch query rate limit: burst, then one per interval (default 2 and 250ms). */
  watchBurst?: number;
  watchIntervalMs?: number;
  logger?: Logger;
  /** Clock for renewedAt (default Date.now). */
  now?: () => number;
}

export const CONSUL_DEFAULTS = {
  ttlMs: 10_000,
  lockDelayMs: 1_000,
  sessionName: 'litefs',
  requestTimeoutMs: 5_000,
  watchWaitMs: 30_000,
  watchRetryMs: 1_000,
  watchBurst: 2,
  watchIntervalMs: 250,
} as const;

/**
 * Primary election through a Consul session lock (LiteFS consul/consul.go):
 * a TTL session with behavior "delete" holds the key `<prefix>/<key>`,
 * whose value is this node's PrimaryInfo JSON. If the primary stops
 * renewing, Consul invalidates the session, deletes the key and blocks
 * re-acquisition for lock-delay. A clean close releases the key first, so a
 * waiting candidate can take over at once.
 */
export class ConsulLeaser implements Leaser {
  readonly type = 'consul' as const;
  readonly hostname: string;
  readonly advertiseURL: string;
  readonly candidate: boolean;
  /** Full KV key of the lease. */
  readonly key: string;
  /** Where the cluster ID lives: `<key>/clusterid`. */
  readonly clusterIDKey: string;
  /** Catalog node sessions are created on: `<prefix>/litefs`, or undefined (the agent's own node) without a prefix. */
  readonly nodeName: string | undefined;
  readonly ttlMs: number;
  readonly lockDelayMs: number;
  readonly endpoint: ConsulEndpoint;

  private readonly client: ConsulClient;
  private readonly sessionName: string;
  private readonly watchWaitMs: number;
  private readonly watchRetryMs: number;
  private readonly watchBurst: number;
  private readonly watchIntervalMs: number;
  private readonly logger: Logger;
  readonly now: () => number;
  private readonly stop = new AbortController();
  private registered: Promise<void> | null = null;
  private closed = false;

  constructor(opts: ConsulLeaserOptions) {
    if (opts.key.trim() === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'consul leaser: a key is required (lease.consul.key)');
    if (opts.hostname === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'consul leaser: a hostname is required (lease.hostname)');
    if (opts.advertiseURL === '')
      throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'consul leaser: an advertise URL is required (lease.advertise-url)');
    this.endpoint = parseConsulURL(opts.url);
    this.hostname = opts.hostname;
    this.advertiseURL = opts.advertiseURL;
    this.candidate = opts.candidate ?? true;
    this.key = joinKey(this.endpoint.keyPrefix, opts.key);
    if (this.key === '')
      throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `consul leaser: key ${JSON.stringify(opts.key)} is empty after joining`);
    this.clusterIDKey = joinKey(this.key, 'clusterid');
    this.nodeName = this.endpoint.keyPrefix === '' ? undefined : joinKey(this.endpoint.keyPrefix, 'litefs');
    this.ttlMs = opts.ttlMs ?? CONSUL_DEFAULTS.ttlMs;
    this.lockDelayMs = opts.lockDelayMs ?? CONSUL_DEFAULTS.lockDelayMs;
    this.sessionName = opts.sessionName ?? CONSUL_DEFAULTS.sessionName;
    this.watchWaitMs = opts.watchWaitMs ?? CONSUL_DEFAULTS.watchWaitMs;
    this.watchRetryMs = opts.watchRetryMs ?? CONSUL_DEFAULTS.watchRetryMs;
    this.watchBurst = opts.watchBurst ?? CONSUL_DEFAULTS.watchBurst;
    this.watchIntervalMs = opts.watchIntervalMs ?? CONSUL_DEFAULTS.watchIntervalMs;
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.client = new ConsulClient(this.endpoint, opts.requestTimeoutMs ?? CONSUL_DEFAULTS.requestTimeoutMs);
  }

  /** "http://host:port/<key>" without the token, for logs. */
  describe(): string {
    return `${redact(this.endpoint.origin)}/${this.key}`;
  }

  /**
   * Registers the shared catalog node `<prefix>/litefs` when the URL has a
   * prefix (sessions must belong to a registered node). Runs once; acquire
   * calls it on demand, so calling it is optional.
   */
  open(opts: CallOptions = {}): Promise<void> {
    this.checkOpen();
    if (this.nodeName === undefined) return Promise.resolve();
    this.registered ??= this.client.registerNode(this.nodeName, 'localhost', opts).catch((err: unknown) => {
      this.registered = null;
      throw err;
    });
    return this.registered;
  }

  async acquire(opts: CallOptions = {}): Promise<Lease> {
    this.checkOpen();
    this.checkCandidate();
    await this.open(opts);
    const startedAt = this.now();
    const sessionID = await this.client.createSession(
      {
        name: this.sessionName,
        behavior: 'delete',
        lockDelay: formatGoDuration(this.lockDelayMs),
        ttl: formatGoDuration(this.ttlMs),
        ...(this.nodeName !== undefined ? { node: this.nodeName } : {}),
      },
      opts,
    );
    let acquired = false;
    try {
      acquired = await this.client.putKey(this.key, encodePrimaryInfo(this), { acquire: sessionID }, opts);
    } finally {
      // Without the lock the session is useless; TTL would reap it, but not
      // before it cluttered Consul for up to 2×TTL.
      if (!acquired)
        await this.client
          .destroySession(sessionID)
          .catch((err: unknown) => this.logger.warn({ err: describeError(err), sessionID }, 'consul: cannot destroy unused session'));
    }
    if (!acquired) throw await this.primaryExists();
    this.logger.info({ key: this.key, sessionID }, 'consul: primary lease acquired');
    return new ConsulLease(this, this.client, sessionID, startedAt, this.logger);
  }

  async acquireExisting(leaseID: string, opts: CallOptions = {}): Promise<Lease> {
    this.checkOpen();
    this.checkCandidate();
    const startedAt = this.now();
    if (!(await this.client.renewSession(leaseID, opts))) {
      throw new LeaseError('ERR_LEASE_EXPIRED', `consul session ${leaseID} handed to this node no longer exists`);
    }
    // Same session: Consul updates the value without bumping LockIndex.
    if (!(await this.client.putKey(this.key, encodePrimaryInfo(this), { acquire: leaseID }, opts))) {
      throw await this.primaryExists();
    }
    this.logger.info({ key: this.key, sessionID: leaseID }, 'consul: primary lease taken over by handoff');
    return new ConsulLease(this, this.client, leaseID, startedAt, this.logger);
  }

  async primaryInfo(opts: CallOptions = {}): Promise<PrimaryInfo> {
    this.checkOpen();
    const { entry } = await this.client.getKey(this.key, opts);
    const info = this.infoOf(entry);
    if (info === null) throw new LeaseError('ERR_LEASE_NO_PRIMARY', `no primary: consul key ${this.key} is empty`);
    return info;
  }

  async *watchPrimary(opts: { signal: AbortSignal }): AsyncIterable<PrimaryInfo | null> {
    this.checkOpen();
    const signal = AbortSignal.any([opts.signal, this.stop.signal]);
    const bucket = new TokenBucket(this.watchBurst, this.watchIntervalMs);
    let index = 0;
    let last: PrimaryInfo | null = null;
    let first = true;
    while (!signal.aborted) {
      let entry: KVEntry | null;
      try {
        await bucket.take(signal);
        const res = await this.client.getKey(this.key, { signal, index, waitMs: this.watchWaitMs });
        entry = res.entry;
        // Consul's documented rules: restart if the index goes backwards,
        // and never block on an index below 1.
        index = res.index < index ? 0 : Math.max(res.index, 1);
      } catch (err) {
        if (signal.aborted) return;
        this.logger.warn({ err: describeError(err), key: this.key }, 'consul: watch of primary key failed; retrying');
        index = 0;
        try {
          await sleep(this.watchRetryMs, signal);
        } catch {
          return;
        }
        continue;
      }
      let info: PrimaryInfo | null;
      try {
        info = this.infoOf(entry);
      } catch (err) {
        this.logger.warn({ err: describeError(err) }, 'consul: ignoring unreadable primary key');
        info = null;
      }
      if (first || !samePrimary(info, last)) {
        first = false;
        last = info;
        yield info;
      }
    }
  }

  async clusterID(opts: CallOptions = {}): Promise<string | null> {
    this.checkOpen();
    const { entry } = await this.client.getKey(this.clusterIDKey, opts);
    return entry === null || entry.value === null || entry.value === '' ? null : entry.value;
  }

  /**
   * Write-once with a check-and-set at index 0 ("create only if absent"),
   * so two nodes racing to initialise the cluster cannot both win (LiteFS
   * reads, then writes). An existing empty value is replaced by CAS on its
   * ModifyIndex.
   */
  async setClusterID(id: string, opts: CallOptions = {}): Promise<void> {
    this.checkOpen();
    if (id === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'cluster ID must not be empty');
    if (await this.client.putKey(this.clusterIDKey, id, { cas: 0 }, opts)) return;
    const { entry } = await this.client.getKey(this.clusterIDKey, opts);
    if (entry !== null && (entry.value === null || entry.value === '')) {
      if (await this.client.putKey(this.clusterIDKey, id, { cas: entry.modifyIndex }, opts)) return;
      return this.setClusterID(id, opts);
    }
    const existing = entry?.value ?? null;
    if (existing === id) return;
    throw new LeaseError(
      'ERR_LEASE_CLUSTER_ID_MISMATCH',
      `consul key ${this.clusterIDKey} already holds cluster ID ${JSON.stringify(existing)}; refusing to set ${JSON.stringify(id)}`,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort(new LeaseError('ERR_LEASE_CLOSED', 'consul leaser closed'));
    this.client.close();
  }

  private infoOf(entry: KVEntry | null): PrimaryInfo | null {
    if (entry === null || entry.value === null || entry.value === '') return null;
    return decodePrimaryInfo(entry.value, `consul key ${this.key}`);
  }

  private async primaryExists(): Promise<PrimaryExistsError> {
    let holder: PrimaryInfo | undefined;
    try {
      const { entry } = await this.client.getKey(this.key);
      holder = this.infoOf(entry) ?? undefined;
    } catch {
      // Best effort: the error is about the lock, not this read.
    }
    const why =
      holder !== undefined
        ? `${holder.hostname} (${holder.advertiseURL}) holds the primary lease at consul key ${this.key}`
        : `consul refused the lock on ${this.key}: another session holds it or its lock-delay (${formatGoDuration(this.lockDelayMs)} after the last holder's session ended) has not passed`;
    return new PrimaryExistsError(why, holder);
  }

  private checkOpen(): void {
    if (this.closed) throw new LeaseError('ERR_LEASE_CLOSED', 'consul leaser is closed');
  }

  private checkCandidate(): void {
    if (!this.candidate)
      throw new LeaseError('ERR_LEASE_NOT_CANDIDATE', `${this.hostname} is not a lease candidate (lease.candidate: false)`);
  }
}

/** A held Consul session lock. Renewal is the caller's job (runRenewLoop). */
export class ConsulLease implements Lease {
  readonly ttlMs: number;
  private renewedAtMs: number;
  private readonly handoffs: HandoffChannel;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly leaser: ConsulLeaser,
    private readonly client: ConsulClient,
    readonly id: string,
    renewedAtMs: number,
    private readonly logger: Logger,
  ) {
    this.ttlMs = leaser.ttlMs;
    this.renewedAtMs = renewedAtMs;
    this.handoffs = new HandoffChannel(`consul lease ${id}`);
  }

  get renewedAt(): Date {
    return new Date(this.renewedAtMs);
  }

  async renew(opts: CallOptions = {}): Promise<void> {
    if (this.closing !== null) throw new LeaseError('ERR_LEASE_CLOSED', `consul lease ${this.id} is closed`);
    // Timestamp before sending: Consul restarts the TTL somewhere between
    // send and reply, so this under-estimates the lease, never over.
    const startedAt = this.leaser.now();
    if (!(await this.client.renewSession(this.id, opts))) {
      throw new LeaseError('ERR_LEASE_EXPIRED', `consul session ${this.id} for ${this.leaser.key} has expired`);
    }
    this.renewedAtMs = startedAt;
  }

  handoff(nodeID: bigint, opts: HandoffOptions = {}): Promise<void> {
    return this.handoffs.send(nodeID, opts.timeoutMs ?? 5_000, opts.signal);
  }

  nextHandoff(opts: CallOptions = {}): Promise<bigint> {
    return this.handoffs.receive(opts.signal);
  }

  /**
   * Releases the key (no lock-delay: Consul applies it only when a session
   * is invalidated while holding locks), then destroys the session. A
   * release failure is logged and the destroy still runs; the destroy's
   * failure is thrown.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.handoffs.close();
    try {
      const released = await this.client.putKey(this.leaser.key, '', { release: this.id });
      if (!released) this.logger.warn({ key: this.leaser.key, sessionID: this.id }, 'consul: key was not held by this session at release');
    } catch (err) {
      this.logger.warn({ err: describeError(err), key: this.leaser.key, sessionID: this.id }, 'consul: cannot release key');
    }
    try {
      await this.client.destroySession(this.id);
    } catch (err) {
      if (isLeaseError(err)) throw err;
      throw new LeaseError('ERR_LEASE_CONSUL', `cannot destroy consul session ${this.id}: ${describeError(err)}`, { cause: err });
    }
  }
}
