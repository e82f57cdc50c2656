/**
 * ConsulTestDouble — a TEST DOUBLE of Consul's documented HTTP API, not
 * Consul. It serves, on 127.0.0.1 (or a given test address), the session, KV and catalog endpoints
 * the npm `consul` package calls for litefs-ts's leaser, with the semantics
 * documented at developer.hashicorp.com/consul/api-docs (see
 * consul-double-state.ts for the rules), plus controls real Consul lacks:
 * an injectable clock, a configurable session_ttl_min and TTL multiplier,
 * simulated outages, and direct reads of its state.
 *
 * Deliberate differences from Consul: one datacenter, no Raft; a blocking
 * KV read wakes only when its key (or prefix) changes and adds no random
 * wait/16 jitter; ACLs are one all-powerful token; session info/list do not
 * block; node and service health checks other than the agent node's
 * serfHealth do not exist.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulDoubleState, ConsulHTTPError, parseGoDurationNs, type DoubleKV, type DoubleSession } from './consul-double-state.js';
import type { ManualClock } from './manual-clock.js';

export interface ConsulTestDoubleOptions {
  /** Drive TTL expiry and lock-delay by hand; default is real time. */
  clock?: ManualClock;
  /**
   * The server invalidates a session after TTL × this without renewal.
   * Default 2, Consul's SessionTTLMultiplier; 1 gives "exactly TTL".
   */
  ttlMultiplier?: number;
  /** Consul's session_ttl_min server setting (default 10s, Consul's default). */
  sessionTTLMinMs?: number;
  /** When set, every request must carry this token (X-Consul-Token, Bearer, or ?token=). */
  aclToken?: string;
  /** The agent's own node, which sessions default to (has a passing serfHealth). */
  nodeName?: string;
  /** Address to listen on (default 127.0.0.1; a network-namespace test's bridge address). */
  host?: string;
}

export type OutageMode =
  /** Accept requests and never answer them (a hung agent). */
  | 'hang'
  /** Answer 500 "No cluster leader", as an agent without a leader does. */
  | 'error'
  /** Close the connection without answering. */
  | 'reset';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  token: string | undefined;
  body: string;
}

export interface KVSnapshot {
  key: string;
  value: string;
  flags: number;
  session: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

export interface SessionSnapshot {
  id: string;
  name: string;
  node: string;
  behavior: 'release' | 'delete';
  ttl: string;
  lockDelayMs: number;
  nodeChecks: string[];
  /** When the double will invalidate it, or null without TTL. */
  expiresAt: number | null;
}

const MAX_WAIT_MS = 600_000;
const DEFAULT_WAIT_MS = 300_000;

export class ConsulTestDouble {
  readonly requests: RecordedRequest[] = [];
  private readonly state: ConsulDoubleState;
  private readonly server: http.Server;
  private readonly now: () => number;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly waiters = new Set<{ key: string; prefix: boolean; wake: () => void }>();
  private readonly hung = new Set<http.ServerResponse>();
  private readonly unsubscribe: Array<() => void> = [];
  private outage: OutageMode | null = null;
  private port = 0;

  private constructor(private readonly opts: ConsulTestDoubleOptions) {
    this.now = opts.clock?.now ?? Date.now;
    this.state = new ConsulDoubleState({
      now: this.now,
      ttlMultiplier: opts.ttlMultiplier ?? 2,
      sessionTTLMinMs: opts.sessionTTLMinMs ?? 10_000,
      agentNode: opts.nodeName ?? 'consul-test-double',
      newID: randomUUID,
    });
    this.unsubscribe.push(this.state.onKVChange((key) => this.wake(key)));
    this.unsubscribe.push(this.state.onSessionChange((s, id) => this.schedule(s, id)));
    if (opts.clock !== undefined) this.unsubscribe.push(opts.clock.onAdvance(() => this.state.reap()));
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  static async start(opts: ConsulTestDoubleOptions = {}): Promise<ConsulTestDouble> {
    const d = new ConsulTestDouble(opts);
    await new Promise<void>((resolve, reject) => {
      d.server.once('error', reject);
      d.server.listen(0, opts.host ?? '127.0.0.1', () => resolve());
    });
    d.port = (d.server.address() as AddressInfo).port;
    return d;
  }

  /** http://<host>:<port> */
  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Simulate an agent outage (null: answer normally again; hung requests are then dropped). */
  setOutage(mode: OutageMode | null): void {
    this.outage = mode;
    if (mode === null) for (const res of [...this.hung]) res.destroy();
  }

  kv(key: string): KVSnapshot | undefined {
    const e = this.state.get(key);
    return e === undefined ? undefined : kvSnapshot(e);
  }

  keys(): string[] {
    return this.state.list('').map((e) => e.key);
  }

  /** Seeds or overwrites a key as a plain PUT would. */
  putKV(key: string, value: string): void {
    this.state.put(key, Buffer.from(value), {});
  }

  session(id: string): SessionSnapshot | undefined {
    const s = this.state.sessions.get(id);
    return s === undefined ? undefined : sessionSnapshot(s);
  }

  sessions(): SessionSnapshot[] {
    return [...this.state.sessions.values()].map(sessionSnapshot);
  }

  nodes(): string[] {
    return [...this.state.nodes.keys()];
  }

  /** When the lock-delay on `key` ends, or undefined if none is running. */
  lockDelayEnds(key: string): number | undefined {
    return this.state.lockDelayEnds(key);
  }

  /** Highest KV index (what X-Consul-Index reports for KV reads). */
  get kvIndex(): number {
    return this.state.kvIndex;
  }

  /** Invalidate a session as a failed health check or an operator would. */
  invalidateSession(id: string): void {
    this.state.invalidate(id);
  }

  /** Invalidate every session whose TTL × multiplier has passed (runs before each request too). */
  reap(): void {
    this.state.reap();
  }

  async close(): Promise<void> {
    for (const u of this.unsubscribe) u();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of [...this.waiters]) w.wake();
    for (const res of [...this.hung]) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- HTTP ----

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const u = new URL(req.url ?? '/', 'http://double');
      const query = Object.fromEntries(u.searchParams.entries());
      const auth = req.headers['authorization'];
      const token =
        headerValue(req.headers['x-consul-token']) ??
        (typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined) ??
        query['token'];
      const method = req.method ?? 'GET';
      this.requests.push({ method, path: safeDecode(u.pathname), query, token, body: body.toString('utf8') });

      if (this.outage === 'reset') return void req.socket.destroy();
      if (this.outage === 'hang') {
        this.hung.add(res);
        res.on('close', () => this.hung.delete(res));
        return;
      }
      if (this.outage === 'error') return text(res, 500, 'rpc error making call: No cluster leader');
      if (this.opts.aclToken !== undefined && token !== this.opts.aclToken) {
        return text(res, 403, token === undefined || token === '' ? 'Permission denied' : 'ACL not found');
      }
      this.state.reap();
      try {
        this.route(method, u, query, body, res);
      } catch (err) {
        if (err instanceof ConsulHTTPError) return text(res, err.status, err.message);
        text(res, 500, String(err));
      }
    });
  }

  private route(method: string, u: URL, q: Record<string, string>, body: Buffer, res: http.ServerResponse): void {
    const p = u.pathname;
    if (p === '/v1/session/create') {
      if (this.expect(method, 'PUT', res)) json(res, 200, { ID: this.state.createSession(parseBody(body)).id });
      return;
    }
    if (p.startsWith('/v1/session/renew/')) {
      if (!this.expect(method, 'PUT', res)) return;
      const id = decodeURIComponent(p.slice('/v1/session/renew/'.length));
      if (id === '') return text(res, 400, 'Missing session');
      const s = this.state.renewSession(id);
      if (s === null) return text(res, 404, `Session id '${id}' not found`);
      return json(res, 200, [sessionJSON(s)]);
    }
    if (p.startsWith('/v1/session/destroy/')) {
      if (!this.expect(method, 'PUT', res)) return;
      const id = decodeURIComponent(p.slice('/v1/session/destroy/'.length));
      if (id === '') return text(res, 400, 'Missing session');
      this.state.destroySession(id);
      return json(res, 200, true);
    }
    if (p.startsWith('/v1/session/info/')) {
      if (!this.expect(method, 'GET', res)) return;
      const s = this.state.sessions.get(decodeURIComponent(p.slice('/v1/session/info/'.length)));
      return json(res, 200, s === undefined ? [] : [sessionJSON(s)], { 'X-Consul-Index': String(this.state.sessionIndex) });
    }
    if (p === '/v1/session/list') {
      if (!this.expect(method, 'GET', res)) return;
      return json(res, 200, [...this.state.sessions.values()].map(sessionJSON), { 'X-Consul-Index': String(this.state.sessionIndex) });
    }
    if (p === '/v1/catalog/register' || p === '/v1/catalog/deregister') {
      if (!this.expect(method, 'PUT', res)) return;
      const b = parseBody(body);
      const node = typeof b['Node'] === 'string' ? b['Node'] : '';
      if (p.endsWith('/register')) this.state.registerNode(node, typeof b['Address'] === 'string' ? b['Address'] : '');
      else this.state.deregisterNode(node);
      return json(res, 200, true);
    }
    if (p === '/v1/status/leader') return json(res, 200, '127.0.0.1:8300');
    if (p.startsWith('/v1/kv/') || p === '/v1/kv') return this.kvRoute(method, decodeURIComponent(p.slice('/v1/kv/'.length)), q, body, res);
    text(res, 404, '404 page not found');
  }

  private kvRoute(method: string, key: string, q: Record<string, string>, body: Buffer, res: http.ServerResponse): void {
    if (method === 'GET') return this.kvGet(key, q, res);
    if (method === 'PUT') {
      if (key === '') return text(res, 400, 'Missing key name');
      if (body.length > 512 * 1024) return text(res, 413, `Request body(${body.length} bytes) too large, max size: 524288 bytes.`);
      const mode: { flags?: number; cas?: number; acquire?: string; release?: string } = {};
      if (q['flags'] !== undefined) mode.flags = Number(q['flags']);
      if (q['cas'] !== undefined) mode.cas = Number(q['cas']);
      if (q['acquire'] !== undefined) mode.acquire = q['acquire'];
      if (q['release'] !== undefined) mode.release = q['release'];
      if ([mode.flags, mode.cas].some((n) => n !== undefined && (!Number.isInteger(n) || n < 0)))
        return text(res, 400, 'Invalid number in query');
      return json(res, 200, this.state.put(key, body, mode));
    }
    if (method === 'DELETE') {
      const opts: { recurse?: boolean; cas?: number } = { recurse: 'recurse' in q };
      if (q['cas'] !== undefined) opts.cas = Number(q['cas']);
      return json(res, 200, this.state.del(key, opts));
    }
    res.setHeader('Allow', 'GET, PUT, DELETE');
    text(res, 405, `method ${method} not allowed`);
  }

  private kvGet(key: string, q: Record<string, string>, res: http.ServerResponse): void {
    const recurse = 'recurse' in q || 'keys' in q;
    const minIndex = q['index'] !== undefined ? Number(q['index']) : 0;
    let waitMs = DEFAULT_WAIT_MS;
    if (q['wait'] !== undefined) {
      const ns = parseGoDurationNs(q['wait']);
      if (ns === undefined) return text(res, 400, `Invalid wait time`);
      waitMs = ns / 1e6;
    }
    waitMs = Math.min(waitMs, MAX_WAIT_MS);
    const answer = (): void => this.kvAnswer(key, recurse, q, res);
    if (!(minIndex > 0) || this.state.kvIndex > minIndex) return answer();
    // Blocking query: hold the request until the key changes or `wait` passes.
    let done = false;
    const waiter = {
      key,
      prefix: recurse,
      wake: () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (!res.destroyed) answer();
      },
    };
    const timer = setTimeout(waiter.wake, waitMs);
    this.waiters.add(waiter);
    res.on('close', () => {
      done = true;
      clearTimeout(timer);
      this.waiters.delete(waiter);
    });
  }

  private kvAnswer(key: string, recurse: boolean, q: Record<string, string>, res: http.ServerResponse): void {
    const headers = { 'X-Consul-Index': String(this.state.kvIndex), 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' };
    if ('keys' in q) {
      const sep = q['separator'] ?? '';
      const keys = new Set<string>();
      for (const e of this.state.list(key)) {
        const rest = e.key.slice(key.length);
        const cut = sep === '' ? -1 : rest.indexOf(sep);
        keys.add(cut < 0 ? e.key : key + rest.slice(0, cut + sep.length));
      }
      if (keys.size === 0) return text(res, 404, '', headers);
      return json(res, 200, [...keys], headers);
    }
    const entries = recurse ? this.state.list(key) : [this.state.get(key)].filter((e): e is DoubleKV => e !== undefined);
    if (entries.length === 0) return text(res, 404, '', headers);
    if ('raw' in q && !recurse) {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
      return void res.end(entries[0]!.value);
    }
    json(res, 200, entries.map(kvJSON), headers);
  }

  private expect(method: string, want: string, res: http.ServerResponse): boolean {
    if (method === want) return true;
    res.setHeader('Allow', want);
    text(res, 405, `method ${method} not allowed`);
    return false;
  }

  private wake(key: string): void {
    for (const w of [...this.waiters]) if (w.prefix ? key.startsWith(w.key) : key === w.key) w.wake();
  }

  /** Real clock only: fire the invalidation when the session's time is up. */
  private schedule(s: DoubleSession | null, id: string): void {
    const old = this.timers.get(id);
    if (old !== undefined) clearTimeout(old);
    this.timers.delete(id);
    if (s === null || s.expiresAt === null || this.opts.clock !== undefined) return;
    // Timers run on the monotonic clock and may fire a millisecond before
    // Date.now() reaches the deadline: if the session is still there after
    // reaping, look again rather than let it live forever.
    this.timers.set(
      id,
      setTimeout(
        () => {
          this.timers.delete(id);
          this.state.reap();
          const still = this.state.sessions.get(id);
          if (still !== undefined) this.schedule(still, id);
        },
        Math.max(0, s.expiresAt - this.now()) + 1,
      ),
    );
  }
}

function safeDecode(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ConsulHTTPError(400, `Request decode failed: ${String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ConsulHTTPError(400, 'Request decode failed: not an object');
  return parsed as Record<string, unknown>;
}

function json(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value));
}

function text(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function kvJSON(e: DoubleKV): Record<string, unknown> {
  return {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: e.flags,
    // Go marshals an empty []byte from the request body as null.
    Value: e.value.length === 0 ? null : e.value.toString('base64'),
    ...(e.session !== '' ? { Session: e.session } : {}),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}

function sessionJSON(s: DoubleSession): Record<string, unknown> {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayNs,
    Behavior: s.behavior,
    TTL: s.ttl,
    NodeChecks: s.nodeChecks,
    ServiceChecks: null,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

function kvSnapshot(e: DoubleKV): KVSnapshot {
  return {
    key: e.key,
    value: e.value.toString('utf8'),
    flags: e.flags,
    session: e.session,
    lockIndex: e.lockIndex,
    createIndex: e.createIndex,
    modifyIndex: e.modifyIndex,
  };
}

function sessionSnapshot(s: DoubleSession): SessionSnapshot {
  return {
    id: s.id,
    name: s.name,
    node: s.node,
    behavior: s.behavior,
    ttl: s.ttl,
    lockDelayMs: s.lockDelayNs / 1e6,
    nodeChecks: [...s.nodeChecks],
    expiresAt: s.expiresAt,
  };
}
