import { Agent, request, type Dispatcher } from 'undici';
import { describeError } from '../internal/index.js';
import { EtcdRequestError } from './errors.js';

/** One key as etcd returns it, value decoded from base64 as UTF-8. */
export interface EtcdKV {
  key: string;
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  /** The lease the key is bound to, as etcd's decimal int64 text; '0' when none. */
  lease: string;
}

export type EtcdCompare =
  /** create_revision == n; 0 means "the key does not exist". */
  | { key: string; target: 'CREATE'; createRevision: bigint }
  /** The key is bound to this lease. */
  | { key: string; target: 'LEASE'; lease: string };

export type EtcdOp = { put: { key: string; value: string; lease?: string } } | { range: { key: string } };

export interface EtcdTxnResult {
  succeeded: boolean;
  revision: bigint;
  /** For each range op of the branch that ran, the key (or null); undefined for puts. */
  ranges: (EtcdKV | null | undefined)[];
}

export interface EtcdWatchEvent {
  type: 'PUT' | 'DELETE';
  kv: EtcdKV;
}

/** Thrown by watch() when the requested revision was compacted away: re-read, then watch from now. */
export class EtcdCompactedError extends Error {
  constructor(readonly compactRevision: bigint) {
    super(`etcd compacted the history up to revision ${compactRevision}`);
  }
}

export interface EtcdTLS {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdCallOptions {
  signal?: AbortSignal;
  /** Time allowed per endpoint before trying the next one (default: the client's request timeout). */
  attemptTimeoutMs?: number;
}

/**
 * etcd's v3 API through its JSON gateway (HTTP/1.1, JSON bodies, int64s as
 * decimal strings, keys and values base64), over undici. Every call tries
 * the endpoints in turn, starting with the last one that answered, so one
 * member being down or cut off costs one attempt timeout, not the node.
 * Only answers that say "this member cannot serve now" (5xx, transport
 * errors, timeouts) move on; a definite answer (404 lease not found, 400)
 * is final.
 */
export class EtcdClient {
  private readonly agent: Agent;
  private preferred = 0;

  constructor(
    readonly endpoints: readonly string[],
    private readonly requestTimeoutMs: number,
    tls: EtcdTLS = {},
  ) {
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      connect: {
        ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
        ...(tls.key !== undefined ? { key: tls.key } : {}),
      },
    });
  }

  async range(key: string, opts: EtcdCallOptions = {}): Promise<{ kv: EtcdKV | null; revision: bigint }> {
    const body = await this.call('range', '/v3/kv/range', { key: b64(key) }, opts);
    const kvs = body['kvs'];
    return { kv: Array.isArray(kvs) && kvs.length > 0 ? toKV(kvs[0]) : null, revision: revisionOf(body) };
  }

  async txn(compare: EtcdCompare[], success: EtcdOp[], failure: EtcdOp[], opts: EtcdCallOptions = {}): Promise<EtcdTxnResult> {
    const body = await this.call(
      'txn',
      '/v3/kv/txn',
      { compare: compare.map(compareJSON), success: success.map(opJSON), failure: failure.map(opJSON) },
      opts,
    );
    const responses = Array.isArray(body['responses']) ? (body['responses'] as unknown[]) : [];
    const ranges = responses.map((r) => {
      const range = isRecord(r) ? r['response_range'] : undefined;
      if (!isRecord(range)) return undefined;
      const kvs = range['kvs'];
      return Array.isArray(kvs) && kvs.length > 0 ? toKV(kvs[0]) : null;
    });
    return { succeeded: body['succeeded'] === true, revision: revisionOf(body), ranges };
  }

  /** A new lease; etcd may grant a longer TTL than asked (its minimum follows the election timeout). */
  async leaseGrant(ttlSeconds: number, opts: EtcdCallOptions = {}): Promise<{ id: string; ttlSeconds: number }> {
    const body = await this.call('lease grant', '/v3/lease/grant', { TTL: String(ttlSeconds) }, opts);
    const id = body['ID'];
    if (typeof id !== 'string' || !/^[1-9][0-9]*$/.test(id)) throw this.bad('lease grant', body);
    return { id, ttlSeconds: Number(body['TTL'] ?? 0) };
  }

  /** One keep-alive round trip; the remaining TTL in seconds, 0 when the lease no longer exists. */
  async leaseKeepAlive(id: string, opts: EtcdCallOptions = {}): Promise<number> {
    // A bidirectional stream in gRPC; through the gateway one request body
    // gets one answer, then the response ends.
    const body = await this.call('lease keepalive', '/v3/lease/keepalive', { ID: id }, opts);
    const result = body['result'];
    if (!isRecord(result)) throw this.bad('lease keepalive', body);
    return Number(result['TTL'] ?? 0);
  }

  /** Ends the lease and deletes its keys; false if etcd no longer knew it. */
  async leaseRevoke(id: string, opts: EtcdCallOptions = {}): Promise<boolean> {
    try {
      await this.call('lease revoke', '/v3/lease/revoke', { ID: id }, opts);
      return true;
    } catch (err) {
      if (err instanceof EtcdRequestError && err.status === 404) return false;
      throw err;
    }
  }

  /**
   * Watches one key from `fromRevision` on, yielding each batch of events,
   * until the signal aborts (returns) or the stream breaks (throws; the
   * caller re-reads and watches again). The stream asks etcd to cancel it
   * if its member loses the leader, so a member cut off from the quorum
   * cannot keep us watching a frozen copy.
   */
  async *watch(key: string, fromRevision: bigint, signal: AbortSignal): AsyncGenerator<EtcdWatchEvent[]> {
    const create = { create_request: { key: b64(key), start_revision: String(fromRevision) } };
    const res = await this.open('watch', '/v3/watch', create, signal);
    let buffered = '';
    let created = false;
    try {
      for await (const chunk of res.body) {
        buffered += Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          const msg = parseJSON(line);
          if (isRecord(msg['error'])) throw new Error(`etcd watch failed: ${JSON.stringify(msg['error']).slice(0, 300)}`);
          const result = msg['result'];
          if (!isRecord(result)) continue;
          const compact = result['compact_revision'];
          if (typeof compact === 'string' && compact !== '0') throw new EtcdCompactedError(BigInt(compact));
          if (result['canceled'] === true)
            throw new Error(`etcd canceled the watch: ${String(result['cancel_reason'] ?? 'no reason given')}`);
          if (result['created'] === true) created = true;
          const events = result['events'];
          if (Array.isArray(events) && events.length > 0) {
            yield events.map((e: unknown) => ({
              type: isRecord(e) && e['type'] === 'DELETE' ? 'DELETE' : 'PUT',
              kv: toKV(isRecord(e) ? e['kv'] : undefined),
            }));
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    } finally {
      res.body.destroy();
    }
    if (!signal.aborted) throw new Error(`etcd ended the watch stream${created ? '' : ' before confirming it'}`);
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }

  /** POSTs `body` and returns the parsed 200 answer, failing over across endpoints. */
  private async call(operation: string, path: string, body: object, opts: EtcdCallOptions): Promise<Record<string, unknown>> {
    const res = await this.open(operation, path, body, opts.signal, opts.attemptTimeoutMs);
    try {
      const text = await res.body.text();
      return parseJSON(text);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new EtcdRequestError({ operation, timedOut: false, attempts: [`reading the answer: ${describeError(err)}`], cause: err });
    }
  }

  /**
   * Sends one request to the first endpoint that answers 200 and returns
   * the response with its body unread. A 4xx answer is final (the cluster
   * has spoken); anything else tries the next endpoint.
   */
  private async open(
    operation: string,
    path: string,
    body: object,
    signal: AbortSignal | undefined,
    attemptTimeoutMs = this.requestTimeoutMs,
  ): Promise<Dispatcher.ResponseData> {
    const attempts: string[] = [];
    let last: { status?: number; grpcCode?: number; timedOut: boolean; cause?: unknown } = { timedOut: false };
    const n = this.endpoints.length;
    const first = this.preferred;
    const payload = JSON.stringify(body);
    for (let i = 0; i < n; i++) {
      if (signal?.aborted) throw signal.reason;
      const idx = (first + i) % n;
      const origin = this.endpoints[idx]!;
      const timeout = AbortSignal.timeout(attemptTimeoutMs);
      const attemptSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${origin}${path}`, {
          method: 'POST',
          dispatcher: this.agent,
          headers: { 'content-type': 'application/json', 'grpc-metadata-hasleader': 'true' },
          body: payload,
          signal: attemptSignal,
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const timedOut = timeout.aborted;
        attempts.push(`${origin}: ${timedOut ? `no answer within ${attemptTimeoutMs} ms` : describeError(err)}`);
        last = { timedOut, cause: err };
        continue;
      }
      if (res.statusCode === 200) {
        this.preferred = idx;
        return res;
      }
      const text = await res.body.text().catch(() => '');
      const detail = errorDetail(text);
      attempts.push(`${origin}: HTTP ${res.statusCode}${detail.message !== '' ? ` ${detail.message}` : ''}`);
      last = { status: res.statusCode, ...(detail.code !== undefined ? { grpcCode: detail.code } : {}), timedOut: false };
      if (res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 429) break;
    }
    throw new EtcdRequestError({ operation, attempts, ...last });
  }

  private bad(operation: string, body: unknown): EtcdRequestError {
    return new EtcdRequestError({
      operation,
      timedOut: false,
      attempts: [`unexpected answer ${JSON.stringify(body)?.slice(0, 200) ?? String(body)}`],
    });
  }
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function unb64(v: unknown): string {
  return typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : '';
}

function int64(v: unknown): bigint {
  return typeof v === 'string' && /^-?[0-9]+$/.test(v) ? BigInt(v) : 0n;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJSON(text: string): Record<string, unknown> {
  const v: unknown = JSON.parse(text);
  if (!isRecord(v)) throw new Error(`expected a JSON object, got ${text.slice(0, 200)}`);
  return v;
}

function revisionOf(body: Record<string, unknown>): bigint {
  const header = body['header'];
  return isRecord(header) ? int64(header['revision']) : 0n;
}

function toKV(v: unknown): EtcdKV {
  const r = isRecord(v) ? v : {};
  return {
    key: unb64(r['key']),
    value: unb64(r['value']),
    createRevision: int64(r['create_revision']),
    modRevision: int64(r['mod_revision']),
    lease: typeof r['lease'] === 'string' ? r['lease'] : '0',
  };
}

function compareJSON(c: EtcdCompare): object {
  return c.target === 'CREATE'
    ? { key: b64(c.key), target: 'CREATE', result: 'EQUAL', create_revision: String(c.createRevision) }
    : { key: b64(c.key), target: 'LEASE', result: 'EQUAL', lease: c.lease };
}

function opJSON(op: EtcdOp): object {
  if ('put' in op) {
    return {
      request_put: { key: b64(op.put.key), value: b64(op.put.value), ...(op.put.lease !== undefined ? { lease: op.put.lease } : {}) },
    };
  }
  return { request_range: { key: b64(op.range.key) } };
}

/** etcd's gateway error body: {"error": "...", "message": "...", "code": <gRPC code>}. */
function errorDetail(text: string): { message: string; code?: number } {
  try {
    const v = parseJSON(text);
    const message = typeof v['message'] === 'string' ? v['message'] : typeof v['error'] === 'string' ? v['error'] : '';
    return { message, ...(typeof v['code'] === 'number' ? { code: v['code'] } : {}) };
  } catch {
    return { message: text.trim().slice(0, 200) };
  }
}
