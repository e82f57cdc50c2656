/**
 * State machine of the ConsulTestDouble (a TEST DOUBLE of Consul's
 * documented session and KV semantics, not Consul). It follows
 * developer.hashicorp.com/consul/api-docs/{session,kv} and the session
 * internals doc:
 *
 * - sessions belong to a registered node and, unless `Checks`/`NodeChecks`
 *   is given (even empty), to that node's `serfHealth` check;
 * - TTL must be 0 or within [session_ttl_min (default 10s), 24h]; the
 *   server invalidates a session only after TTL × 2 without renewal (Consul's
 *   SessionTTLMultiplier: "not expired before the TTL", upper bound not
 *   promised);
 * - invalidation (TTL, destroy, node deregistration) releases or deletes
 *   (Behavior) every key the session holds and starts lock-delay
 *   (capped at 60s) on each; an explicit `?release=` starts no lock-delay;
 * - `?acquire=` fails while another session holds the key or lock-delay
 *   runs, increments LockIndex on a new acquisition, keeps it when the
 *   holder re-acquires (updating the value);
 * - `?release=` clears Session, keeps LockIndex, and writes the request body
 *   as the new value;
 * - `?cas=0` creates only; `?cas=N` writes only at ModifyIndex N;
 * - writes that change nothing keep ModifyIndex;
 * - X-Consul-Index for KV reads is the highest index of the KV table,
 *   deletions (tombstones) included.
 */

export interface DoubleSession {
  id: string;
  name: string;
  node: string;
  /** Nanoseconds, as Consul reports it. */
  lockDelayNs: number;
  behavior: 'release' | 'delete';
  ttl: string;
  ttlMs: number;
  nodeChecks: string[];
  createIndex: number;
  modifyIndex: number;
  /** When the server will invalidate it (last renewal + TTL × multiplier), null without TTL. */
  expiresAt: number | null;
}

export interface DoubleKV {
  key: string;
  value: Buffer;
  flags: number;
  session: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

/** An error Consul reports with an HTTP status and a text body. */
export class ConsulHTTPError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface StateOptions {
  now: () => number;
  ttlMultiplier: number;
  sessionTTLMinMs: number;
  agentNode: string;
  newID: () => string;
}

const MAX_LOCK_DELAY_NS = 60e9;
const SESSION_TTL_MAX_MS = 86_400_000;
/** FixupLockDelay: numbers (and strings) below this many ns are read as seconds. */
const LOCK_DELAY_MIN_THRESHOLD = 1000;

export class ConsulDoubleState {
  /** Raft-like index; every write takes the next value. */
  index = 0;
  kvIndex = 0;
  sessionIndex = 0;
  readonly sessions = new Map<string, DoubleSession>();
  readonly kvs = new Map<string, DoubleKV>();
  /** key -> time lock-delay ends. */
  readonly lockDelays = new Map<string, number>();
  /** node name -> its health checks ("serfHealth" only for the agent's own node). */
  readonly nodes = new Map<string, { address: string; checks: string[] }>();
  private readonly kvListeners = new Set<(key: string) => void>();
  private readonly sessionListeners = new Set<(s: DoubleSession | null, id: string) => void>();

  constructor(private readonly opts: StateOptions) {
    this.nodes.set(opts.agentNode, { address: '127.0.0.1', checks: ['serfHealth'] });
  }

  onKVChange(fn: (key: string) => void): () => void {
    this.kvListeners.add(fn);
    return () => this.kvListeners.delete(fn);
  }

  /** Called with the session after create/renew (to reschedule expiry), or null after invalidation. */
  onSessionChange(fn: (s: DoubleSession | null, id: string) => void): () => void {
    this.sessionListeners.add(fn);
    return () => this.sessionListeners.delete(fn);
  }

  // ---- catalog ----

  registerNode(node: string, address: string): void {
    if (node === '') throw new ConsulHTTPError(400, 'Must provide node');
    if (address === '') throw new ConsulHTTPError(400, 'Must provide address');
    const existing = this.nodes.get(node);
    this.nodes.set(node, { address, checks: existing?.checks ?? [] });
    this.index++;
  }

  deregisterNode(node: string): void {
    this.nodes.delete(node);
    for (const s of [...this.sessions.values()]) if (s.node === node) this.invalidate(s.id);
    this.index++;
  }

  // ---- sessions ----

  createSession(body: Record<string, unknown>): DoubleSession {
    const get = (name: string): unknown => {
      for (const [k, v] of Object.entries(body)) if (k.toLowerCase() === name.toLowerCase()) return v;
      return undefined;
    };
    const has = (name: string): boolean => Object.keys(body).some((k) => k.toLowerCase() === name.toLowerCase());

    let lockDelayNs = 15e9;
    const ld = get('LockDelay');
    if (typeof ld === 'string') {
      const ns = parseGoDurationNs(ld);
      if (ns === undefined) throw new ConsulHTTPError(400, `Request decode failed: time: invalid duration "${ld}"`);
      lockDelayNs = ns < LOCK_DELAY_MIN_THRESHOLD ? ns * 1e9 : ns;
    } else if (typeof ld === 'number') {
      lockDelayNs = ld < LOCK_DELAY_MIN_THRESHOLD ? ld * 1e9 : ld;
    }

    const behaviorRaw = get('Behavior') ?? '';
    if (behaviorRaw !== '' && behaviorRaw !== 'release' && behaviorRaw !== 'delete') {
      throw new ConsulHTTPError(500, `Invalid Behavior setting '${String(behaviorRaw)}'`);
    }
    const behavior = behaviorRaw === '' ? 'release' : (behaviorRaw as 'release' | 'delete');

    const ttl = typeof get('TTL') === 'string' ? (get('TTL') as string) : '';
    let ttlMs = 0;
    if (ttl !== '') {
      const ns = parseGoDurationNs(ttl);
      if (ns === undefined) throw new ConsulHTTPError(500, `Session TTL '${ttl}' invalid: time: invalid duration "${ttl}"`);
      ttlMs = ns / 1e6;
      if (ttlMs !== 0 && (ttlMs < this.opts.sessionTTLMinMs || ttlMs > SESSION_TTL_MAX_MS)) {
        throw new ConsulHTTPError(500, `Invalid Session TTL '${ns}', must be between [${goDuration(this.opts.sessionTTLMinMs)}=24h0m0s]`);
      }
    }

    const nodeRaw = get('Node');
    const node = typeof nodeRaw === 'string' && nodeRaw !== '' ? nodeRaw : this.opts.agentNode;
    const nodeInfo = this.nodes.get(node);
    if (nodeInfo === undefined) throw new ConsulHTTPError(500, 'Missing node registration');

    let checks: string[] = ['serfHealth'];
    if (has('Checks') || has('NodeChecks')) {
      checks = [...asStrings(get('Checks')), ...asStrings(get('NodeChecks'))];
    }
    for (const c of checks) {
      if (!nodeInfo.checks.includes(c)) throw new ConsulHTTPError(500, `Missing check '${c}' registration`);
    }

    const idx = ++this.index;
    this.sessionIndex = idx;
    const session: DoubleSession = {
      id: this.opts.newID(),
      name: typeof get('Name') === 'string' ? (get('Name') as string) : '',
      node,
      lockDelayNs,
      behavior,
      ttl,
      ttlMs,
      nodeChecks: checks,
      createIndex: idx,
      modifyIndex: idx,
      expiresAt: ttlMs > 0 ? this.opts.now() + ttlMs * this.opts.ttlMultiplier : null,
    };
    this.sessions.set(session.id, session);
    this.emitSession(session, session.id);
    return session;
  }

  /** Null when the session does not exist (Consul answers 404). */
  renewSession(id: string): DoubleSession | null {
    const s = this.sessions.get(id);
    if (s === undefined) return null;
    if (s.ttlMs > 0) s.expiresAt = this.opts.now() + s.ttlMs * this.opts.ttlMultiplier;
    this.emitSession(s, id);
    return s;
  }

  destroySession(id: string): void {
    if (this.sessions.has(id)) this.invalidate(id);
  }

  /** Invalidates every session whose TTL (× multiplier) has run out. */
  reap(): void {
    const now = this.opts.now();
    for (const s of [...this.sessions.values()]) {
      if (s.expiresAt !== null && s.expiresAt <= now) this.invalidate(s.id);
    }
  }

  /** What Consul does when a session ends for any reason but an explicit release. */
  invalidate(id: string): void {
    const s = this.sessions.get(id);
    if (s === undefined) return;
    const idx = ++this.index;
    this.sessions.delete(id);
    this.sessionIndex = idx;
    const now = this.opts.now();
    const delayMs = Math.min(s.lockDelayNs, MAX_LOCK_DELAY_NS) / 1e6;
    const touched: string[] = [];
    for (const e of [...this.kvs.values()]) {
      if (e.session !== id) continue;
      if (s.behavior === 'delete') {
        this.kvs.delete(e.key);
      } else {
        e.session = '';
        e.modifyIndex = idx;
      }
      this.kvIndex = idx;
      if (delayMs > 0) this.lockDelays.set(e.key, now + delayMs);
      touched.push(e.key);
    }
    this.emitSession(null, id);
    for (const k of touched) this.emitKV(k);
  }

  // ---- KV ----

  get(key: string): DoubleKV | undefined {
    return this.kvs.get(key);
  }

  list(prefix: string): DoubleKV[] {
    return [...this.kvs.values()].filter((e) => e.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  lockDelayEnds(key: string): number | undefined {
    const t = this.lockDelays.get(key);
    return t !== undefined && t > this.opts.now() ? t : undefined;
  }

  /**
   * PUT /v1/kv/<key>. When several are given, Consul's handler lets the
   * last parsed win: release over acquire over cas.
   */
  put(key: string, value: Buffer, q: { flags?: number; cas?: number; acquire?: string; release?: string }): boolean {
    const existing = this.kvs.get(key);
    const flags = q.flags ?? 0;
    if (q.release !== undefined) {
      if (existing === undefined || existing.session !== q.release) return false;
      return this.write(key, value, flags, '', existing.lockIndex);
    }
    if (q.acquire !== undefined) {
      if (!this.sessions.has(q.acquire)) throw new ConsulHTTPError(500, `invalid session "${q.acquire}"`);
      if (this.lockDelayEnds(key) !== undefined) return false;
      if (existing !== undefined && existing.session !== '' && existing.session !== q.acquire) return false;
      const lockIndex = existing === undefined ? 1 : existing.session === q.acquire ? existing.lockIndex : existing.lockIndex + 1;
      return this.write(key, value, flags, q.acquire, lockIndex);
    }
    if (q.cas !== undefined) {
      if (existing === undefined ? q.cas !== 0 : existing.modifyIndex !== q.cas) return false;
    }
    // A plain write keeps any lock holder (locks are advisory).
    return this.write(key, value, flags, existing?.session ?? '', existing?.lockIndex ?? 0);
  }

  /** DELETE /v1/kv/<key>; `cas` must match ModifyIndex (0 never deletes an existing key). */
  del(key: string, q: { recurse?: boolean; cas?: number }): boolean {
    if (q.recurse) {
      const doomed = this.list(key);
      if (doomed.length === 0) return true;
      const idx = ++this.index;
      for (const e of doomed) this.kvs.delete(e.key);
      this.kvIndex = idx;
      for (const e of doomed) this.emitKV(e.key);
      return true;
    }
    const existing = this.kvs.get(key);
    if (q.cas !== undefined && (existing === undefined || existing.modifyIndex !== q.cas)) return existing === undefined;
    if (existing === undefined) return true;
    const idx = ++this.index;
    this.kvs.delete(key);
    this.kvIndex = idx;
    this.emitKV(key);
    return true;
  }

  private write(key: string, value: Buffer, flags: number, session: string, lockIndex: number): boolean {
    const existing = this.kvs.get(key);
    if (
      existing !== undefined &&
      existing.value.equals(value) &&
      existing.flags === flags &&
      existing.session === session &&
      existing.lockIndex === lockIndex
    ) {
      return true; // nothing changed: no new index, no wake-ups
    }
    const idx = ++this.index;
    this.kvs.set(key, {
      key,
      value,
      flags,
      session,
      lockIndex,
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
    });
    this.kvIndex = idx;
    this.emitKV(key);
    return true;
  }

  private emitKV(key: string): void {
    for (const fn of [...this.kvListeners]) fn(key);
  }

  private emitSession(s: DoubleSession | null, id: string): void {
    for (const fn of [...this.sessionListeners]) fn(s, id);
  }
}

function asStrings(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is string => typeof x === 'string');
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go time.ParseDuration, in nanoseconds (kept separate from the code under test on purpose). */
export function parseGoDurationNs(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    sign = s[0] === '-' ? -1 : 1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  const term = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/;
  while (s !== '') {
    const m = term.exec(s);
    if (m === null || m[1] === '' || m[1] === '.') return undefined;
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return Math.round(sign * total);
}

function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}
