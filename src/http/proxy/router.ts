import type { IncomingMessage } from 'node:http';
import type { ProxyConfig } from '../../config/index.js';
import type { Logger } from '../../internal/index.js';
import type { ProxyBackend } from './backend.js';
import { formatTXIDHex, readTXIDCookie } from './cookie.js';
import { HOP_HEADER } from './headers.js';
import { PathMatcher } from './paths.js';
import { oneLine } from './respond.js';

/** GET (or HEAD) here answers from the proxy itself: 200 "OK", or 503 when replication lags. */
export const HEALTH_PATH = '/litefs/health';

/** Which way a request goes: this node's app, or the primary node's proxy. */
export type Destination = 'local' | 'primary';

/** One client request as the router sees it, plain or Upgrade alike. */
export interface Exchange {
  readonly req: IncomingMessage;
  /** Decoded path without the query, as patterns match it. */
  readonly path: string;
  /** Aborts when the client goes away or the proxy shuts down. */
  readonly signal: AbortSignal;
  /** Answers from the proxy itself (plain text). */
  text(status: number, message: string): void;
  /** Relays the request; `setCookie` adds the `__txid` cookie to the answer. */
  forward(to: Destination, setCookie: boolean): Promise<void>;
}

export interface RouterOptions {
  config: ProxyConfig;
  backend: ProxyBackend;
  txidWaitTimeoutMs: number;
  log: Logger;
}

/**
 * Decides where each request goes (LiteFS's ProxyServer.serveHTTP, with
 * forwarding instead of fly-replay) and performs the waits that come
 * before: read-your-writes on reads, a known primary on writes.
 */
export class Router {
  private readonly config: ProxyConfig;
  private readonly backend: ProxyBackend;
  private readonly txidWaitTimeoutMs: number;
  private readonly log: Logger;
  private readonly passthrough: PathMatcher;
  private readonly alwaysForward: PathMatcher;

  constructor(o: RouterOptions) {
    this.config = o.config;
    this.backend = o.backend;
    this.txidWaitTimeoutMs = o.txidWaitTimeoutMs;
    this.log = o.log;
    this.passthrough = new PathMatcher(o.config.passthrough, 'proxy.passthrough');
    this.alwaysForward = new PathMatcher(o.config.alwaysForward, 'proxy.always-forward');
  }

  async route(ex: Exchange): Promise<void> {
    const { req, path } = ex;
    const method = req.method ?? 'GET';
    if (this.passthrough.matches(path)) {
      this.trace(ex, 'passthrough path, to the local app');
      return ex.forward('local', false);
    }
    const readMethod = method === 'GET' || method === 'HEAD';
    if (readMethod && path === HEALTH_PATH) return this.health(ex);

    // A request another proxy forwarded was a write where it came from,
    // whatever this node's always-forward list says.
    const forwarded = req.headers[HOP_HEADER] !== undefined;
    if (readMethod && !forwarded && !this.alwaysForward.matches(path)) {
      if (!(await this.catchUp(ex))) return;
      this.trace(ex, 'read, to the local app');
      return ex.forward('local', false);
    }
    return this.write(ex, forwarded);
  }

  private health(ex: Exchange): void {
    const lag = this.backend.isPrimary() ? 0 : this.backend.lagMs();
    const max = this.config.maxLagMs;
    if (max > 0 && lag > max) {
      this.trace(ex, `replication lag ${lag}ms exceeds proxy.max-lag ${max}ms`);
      ex.text(503, 'Replication lag exceeded');
      return;
    }
    ex.text(200, 'OK');
  }

  /**
   * Read-your-writes: with a `__txid` cookie, wait (event-driven, bounded)
   * until this node has applied that transaction. False when the request
   * has been answered (504) or abandoned.
   */
  private async catchUp(ex: Exchange): Promise<boolean> {
    const cookie = readTXIDCookie(ex.req.headers.cookie);
    if (cookie.kind === 'malformed') {
      this.log.debug({ value: oneLine(cookie.value, 60), path: ex.path }, 'proxy: ignoring malformed __txid cookie');
      return true;
    }
    if (cookie.kind === 'absent') return true;
    const db = this.config.db;
    const current = this.backend.txid(db);
    // LiteFS sends the request on when the tracked database does not exist here yet.
    if (current === null || current >= cookie.txid) return true;

    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.txidWaitTimeoutMs);
    let caughtUp: boolean;
    try {
      caughtUp = await this.backend.waitForTXID(db, cookie.txid, AbortSignal.any([ex.signal, timeout.signal]));
    } finally {
      clearTimeout(timer);
    }
    if (caughtUp) return true;
    if (ex.signal.aborted) return false;
    this.trace(ex, `database ${db} at txid ${formatTXIDHex(this.backend.txid(db) ?? 0n)}, needs ${formatTXIDHex(cookie.txid)}: timeout`);
    ex.text(504, 'Proxy timeout');
    return false;
  }

  private async write(ex: Exchange, forwarded: boolean): Promise<void> {
    if (!this.backend.isPrimary() && this.backend.primaryProxyURL() === null) {
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), this.config.primaryRedirectTimeoutMs);
      try {
        await this.backend.waitForPrimary(AbortSignal.any([ex.signal, timeout.signal]));
      } finally {
        clearTimeout(timer);
      }
      if (ex.signal.aborted) return;
    }
    if (this.backend.isPrimary()) {
      this.trace(ex, 'write on the primary, to the local app');
      return ex.forward('local', true);
    }
    const primary = this.backend.primaryProxyURL();
    if (primary === null) {
      this.trace(ex, 'write, no primary known');
      ex.text(503, 'Proxy error: no primary available');
      return;
    }
    if (forwarded) {
      this.log.warn(
        { method: ex.req.method, path: ex.path, primary },
        'proxy: forwarded request reached a node that is not the primary; refusing to forward it again',
      );
      ex.text(
        503,
        `Proxy error: this request was already forwarded by a LiteFS proxy (${HOP_HEADER} header) but this node is not the primary either; ` +
          `it believes the primary's proxy is ${primary}. Not forwarding again to avoid a loop; the cluster disagrees about its primary or a proxy URL is wrong.`,
      );
      return;
    }
    this.trace(ex, `write on a replica, forwarding to the primary at ${primary}`);
    return ex.forward('primary', false);
  }

  private trace(ex: Exchange, what: string): void {
    if (this.config.debug) this.log.info({ method: ex.req.method, path: ex.path }, `proxy: ${what}`);
  }
}
