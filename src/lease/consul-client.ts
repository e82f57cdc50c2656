import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import Consul from 'consul';
import { ConsulRequestError } from './errors.js';
import type { ConsulEndpoint } from './consul-url.js';

/** One KV entry as the consul package returns it (Value already base64-decoded). */
export interface KVEntry {
  key: string;
  value: string | null;
  session: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Overrides the client's per-request timeout. */
  timeoutMs?: number;
}

/**
 * The subset of the npm `consul` v2 API we call, typed with the options the
 * JavaScript accepts. Its bundled .d.ts omits `ctx`, `timeout`, `index`
 * and `wait`, which are documented in its README and handled in lib/utils.js.
 */
interface CommonCallOptions {
  timeout?: number;
  ctx?: EventEmitter;
}
interface RawConsul {
  kv: {
    get(opts: CommonCallOptions & { key: string; index?: string; wait?: string }): Promise<unknown>;
    set(opts: CommonCallOptions & { key: string; value: string; acquire?: string; release?: string; cas?: number }): Promise<unknown>;
  };
  session: {
    create(
      opts: CommonCallOptions & {
        name: string;
        behavior: 'release' | 'delete';
        lockdelay: string;
        ttl: string;
        checks: string[];
        node?: string;
      },
    ): Promise<unknown>;
    renew(opts: CommonCallOptions & { id: string }): Promise<unknown>;
    destroy(opts: CommonCallOptions & { id: string }): Promise<unknown>;
  };
  catalog: {
    register(opts: CommonCallOptions & { node: string; address: string }): Promise<unknown>;
  };
  destroy(): void;
}

/** The ctx object papi (the consul package's HTTP layer) uses for cancel and for returning the response. */
interface PapiContext extends EventEmitter {
  includeResponse?: boolean;
}

export interface SessionSpec {
  name: string;
  behavior: 'release' | 'delete';
  lockDelay: string;
  ttl: string;
  node?: string;
}

/**
 * Thin, typed access to Consul through the npm `consul` package. Every call
 * has a timeout (a hung agent must not hang the daemon) and every failure
 * becomes a ConsulRequestError naming the operation, URL and status.
 */
export class ConsulClient {
  private readonly raw: RawConsul;

  constructor(
    private readonly endpoint: ConsulEndpoint,
    private readonly requestTimeoutMs: number,
  ) {
    // baseUrl rather than host/port: the package would default the port to
    // 8500, and credentials in the URL would become HTTP basic auth.
    const opts = {
      baseUrl: `${endpoint.origin}/v1`,
      ...(endpoint.token !== '' ? { defaults: { token: endpoint.token } } : {}),
    };
    this.raw = new Consul(opts as ConstructorParameters<typeof Consul>[0]) as unknown as RawConsul;
  }

  async createSession(spec: SessionSpec, opts: RequestOptions = {}): Promise<string> {
    const body = await this.call('session.create', 'PUT', '/v1/session/create', opts, (common) =>
      this.raw.session.create({
        ...common,
        name: spec.name,
        behavior: spec.behavior,
        lockdelay: spec.lockDelay,
        ttl: spec.ttl,
        // An empty list (not absent) drops Consul's default serfHealth check,
        // like the Go client's CreateNoChecks: the TTL alone decides.
        checks: [],
        ...(spec.node !== undefined ? { node: spec.node } : {}),
      }),
    );
    const id = isRecord(body) ? body['ID'] : undefined;
    if (typeof id !== 'string' || id === '') {
      throw this.badResponse('session.create', 'PUT', '/v1/session/create', body);
    }
    return id;
  }

  /** False when Consul no longer knows the session (404), i.e. it expired or was destroyed. */
  async renewSession(id: string, opts: RequestOptions = {}): Promise<boolean> {
    const path = `/v1/session/renew/${encodeURIComponent(id)}`;
    try {
      const body = await this.call('session.renew', 'PUT', path, opts, (common) => this.raw.session.renew({ ...common, id }));
      return Array.isArray(body) && body.length > 0;
    } catch (err) {
      if (err instanceof ConsulRequestError && err.status === 404) return false;
      throw err;
    }
  }

  async destroySession(id: string, opts: RequestOptions = {}): Promise<void> {
    const path = `/v1/session/destroy/${encodeURIComponent(id)}`;
    await this.call('session.destroy', 'PUT', path, opts, (common) => this.raw.session.destroy({ ...common, id }));
  }

  /**
   * Reads one key. With `index` > 0 this is a blocking query that returns
   * when the key may have changed or after `waitMs`. `index` is Consul's
   * X-Consul-Index from the response.
   */
  async getKey(
    key: string,
    opts: RequestOptions & { index?: number; waitMs?: number } = {},
  ): Promise<{ entry: KVEntry | null; index: number }> {
    const blocking = opts.index !== undefined && opts.index > 0;
    const query = blocking ? `?index=${opts.index}&wait=${opts.waitMs ?? 300_000}ms` : '';
    const path = `/v1/kv/${encodeKeyPath(key)}${query}`;
    // Consul may hold a blocking query up to wait + wait/16; allow for that.
    const waitMs = opts.waitMs ?? 300_000;
    const timeoutMs = opts.timeoutMs ?? (blocking ? waitMs + waitMs / 16 + this.requestTimeoutMs : this.requestTimeoutMs);
    const result = await this.call('kv.get', 'GET', path, { ...opts, timeoutMs }, (common) => {
      common.ctx.includeResponse = true;
      return this.raw.kv.get({
        ...common,
        key,
        ...(blocking ? { index: String(opts.index), wait: `${waitMs}ms` } : {}),
      });
    });
    // With includeResponse the package resolves [response] (404) or [response, item].
    if (!Array.isArray(result) || result.length === 0) throw this.badResponse('kv.get', 'GET', path, result);
    const res = result[0] as IncomingMessage;
    const header = res.headers?.['x-consul-index'];
    const index = typeof header === 'string' && /^[0-9]+$/.test(header) ? Number(header) : 0;
    const item: unknown = result[1];
    return { entry: item === undefined ? null : toEntry(item, () => this.badResponse('kv.get', 'GET', path, item)), index };
  }

  /**
   * PUT /v1/kv/<key>; at most one of acquire / release / cas. Returns
   * Consul's true/false answer (false: lock held elsewhere, lock-delay, or
   * CAS mismatch).
   */
  async putKey(
    key: string,
    value: string,
    mode: { acquire?: string; release?: string; cas?: number },
    opts: RequestOptions = {},
  ): Promise<boolean> {
    const q =
      mode.acquire !== undefined
        ? `?acquire=${mode.acquire}`
        : mode.release !== undefined
          ? `?release=${mode.release}`
          : mode.cas !== undefined
            ? `?cas=${mode.cas}`
            : '';
    const path = `/v1/kv/${encodeKeyPath(key)}${q}`;
    const body = await this.call('kv.set', 'PUT', path, opts, (common) => this.raw.kv.set({ ...common, key, value, ...mode }));
    // papi (the package's HTTP layer) resolves a falsy body as undefined, so
    // Consul's `false` arrives as undefined; any other shape is a real surprise.
    if (body === true) return true;
    if (body === false || body === undefined) return false;
    throw this.badResponse('kv.set', 'PUT', path, body);
  }

  async registerNode(node: string, address: string, opts: RequestOptions = {}): Promise<void> {
    await this.call('catalog.register', 'PUT', '/v1/catalog/register', opts, (common) =>
      this.raw.catalog.register({ ...common, node, address }),
    );
  }

  /** Drops idle keep-alive sockets. The client stays usable. */
  close(): void {
    this.raw.destroy();
  }

  private async call(
    operation: string,
    method: string,
    path: string,
    opts: RequestOptions,
    fn: (common: { timeout: number; ctx: PapiContext }) => Promise<unknown>,
  ): Promise<unknown> {
    const url = `${this.endpoint.origin}${path}`;
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    if (opts.signal?.aborted) throw opts.signal.reason;
    const ctx: PapiContext = new EventEmitter();
    const onAbort = (): void => {
      ctx.emit('cancel');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await fn({ timeout: timeoutMs, ctx });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw toRequestError(err, operation, method, url, timeoutMs);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private badResponse(operation: string, method: string, path: string, body: unknown): ConsulRequestError {
    return new ConsulRequestError({
      operation,
      method,
      url: `${this.endpoint.origin}${path}`,
      timedOut: false,
      detail: `unexpected response ${JSON.stringify(body)?.slice(0, 200) ?? String(body)}`,
    });
  }
}

/** Consul keys go in the URL path; keep "/" as a separator, escape the rest. */
function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toEntry(item: unknown, bad: () => Error): KVEntry {
  if (!isRecord(item) || typeof item['Key'] !== 'string') throw bad();
  const value = item['Value'];
  const num = (k: string): number => (typeof item[k] === 'number' ? (item[k] as number) : 0);
  return {
    key: item['Key'],
    value: typeof value === 'string' ? value : null,
    session: typeof item['Session'] === 'string' ? item['Session'] : '',
    lockIndex: num('LockIndex'),
    createIndex: num('CreateIndex'),
    modifyIndex: num('ModifyIndex'),
  };
}

function toRequestError(err: unknown, operation: string, method: string, url: string, timeoutMs: number): ConsulRequestError {
  const e = isRecord(err) || err instanceof Error ? (err as Record<string, unknown> & Partial<Error>) : {};
  const message = typeof e.message === 'string' ? e.message.replace(/^consul: [\w.]+: /, '') : String(err);
  if (e['isTimeout'] === true) {
    return new ConsulRequestError({ operation, method, url, timedOut: true, detail: `no answer within ${timeoutMs}ms`, cause: err });
  }
  const response = e['response'];
  const status = isRecord(response) && typeof response['statusCode'] === 'number' ? response['statusCode'] : undefined;
  if (status !== undefined) {
    const body = isRecord(response) ? bodyText(response['body']) : '';
    const detail = `HTTP ${status}: ${body !== '' ? body : message}`;
    return new ConsulRequestError({ operation, method, url, status, timedOut: false, detail, cause: err });
  }
  const code = typeof e['code'] === 'string' ? `${e['code']} ` : '';
  return new ConsulRequestError({ operation, method, url, timedOut: false, detail: `${code}${message}`.trim(), cause: err });
}

function bodyText(body: unknown): string {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  return text.trim().slice(0, 300);
}
