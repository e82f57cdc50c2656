import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Agent, Pool, buildConnector } from 'undici';
import { parseHostPort, type ProxyConfig } from '../../config/index.js';
import { describeError, silentLogger, type Logger } from '../../internal/index.js';
import type { ProxyBackend } from './backend.js';
import { DEFAULT_TXID_COOKIE_EXPIRY_MS, formatTXIDCookie } from './cookie.js';
import { ProxyError } from './errors.js';
import { upstreamRequestHeaders } from './headers.js';
import { originForm, requestPath } from './paths.js';
import { relay, type RelayOutcome } from './relay.js';
import { oneLine, sendRawText, sendText } from './respond.js';
import { Router, type Destination, type Exchange } from './router.js';
import { serverTimeouts, type ServerTimeouts } from './timeouts.js';
import { endSoon, relayUpgrade, type UpgradeOutcome } from './upgrade.js';
import { ConditionWaiters } from './waiters.js';

export interface ProxyServerOptions {
  logger?: Logger;
  /** How long a read with a `__txid` cookie waits for this node to catch up before 504 (LiteFS: 5 s). */
  txidWaitTimeoutMs?: number;
  /** How long refused connections to the local app are retried, e.g. while it starts (LiteFS: 30 s). */
  upstreamRetryTimeoutMs?: number;
  /** Delay between those retries (LiteFS: 100 ms). */
  upstreamRetryIntervalMs?: number;
  /** Lifetime of the `__txid` cookie (LiteFS: 5 min). */
  cookieExpiryMs?: number;
  /** How long close() lets in-flight requests finish before cutting every connection. */
  closeTimeoutMs?: number;
  /** Clock for cookie expiry dates. */
  now?: () => number;
  /**
   * TLS options for other nodes' proxies at https:// URLs (the node API's
   * CA and client certificate), read per connection so a reload applies.
   */
  primaryTLS?: () => ConnectionOptions;
}

export const PROXY_DEFAULTS = {
  txidWaitTimeoutMs: 5_000,
  upstreamRetryTimeoutMs: 30_000,
  upstreamRetryIntervalMs: 100,
  cookieExpiryMs: DEFAULT_TXID_COOKIE_EXPIRY_MS,
  closeTimeoutMs: 5_000,
} as const;

export interface ProxyStats {
  /** HTTP requests being served, including Upgrade requests not yet tunnelled. */
  requests: number;
  /** Established Upgrade tunnels (WebSockets). */
  tunnels: number;
}

export interface ProxyServer {
  /** Binds proxy.addr. Rejects with ERR_PROXY_LISTEN (address in use, ...). */
  listen(): Promise<void>;
  /** The bound address; ERR_PROXY_NOT_LISTENING before listen(). */
  address(): AddressInfo;
  /** `http://host:port` of the bound address (`localhost` for a wildcard bind). */
  url(): string;
  stats(): ProxyStats;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to
   * closeTimeoutMs, ends Upgrade tunnels at once (each side after its queued
   * bytes), then destroys whatever is left. Idempotent.
   */
  close(): Promise<void>;
}

export function createProxyServer(config: ProxyConfig, backend: ProxyBackend, options: ProxyServerOptions = {}): ProxyServer {
  return new LiteFSProxy(config, backend, options);
}

function optionMs(options: ProxyServerOptions, key: keyof typeof PROXY_DEFAULTS): number {
  const v = options[key] ?? PROXY_DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ProxyError('ERR_PROXY_INVALID_OPTION', `${key}: ${String(v)} is not a duration in milliseconds (a finite number >= 0)`);
  }
  return v;
}

function originOf(host: string, port: number): string {
  const h = host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

class LiteFSProxy implements ProxyServer {
  private readonly log: Logger;
  private readonly server: http.Server;
  private readonly timeouts: ServerTimeouts;
  private readonly listenAt: { host: string; port: number };
  private readonly localOrigin: string;
  private readonly localPool: Pool;
  private readonly agent: Agent;
  private readonly router: Router;
  private readonly upstreamRetryTimeoutMs: number;
  private readonly retryIntervalMs: number;
  private readonly cookieExpiryMs: number;
  private readonly closeTimeoutMs: number;
  private readonly now: () => number;
  private readonly primaryTLS: (() => ConnectionOptions) | undefined;

  /** Per-request controllers, aborted together on shutdown (cheaper than a listener each). */
  private readonly inflight = new Set<AbortController>();
  private readonly idle = new ConditionWaiters();
  private requests = 0;
  private readonly pendingUpgrades = new Set<Duplex>();
  private readonly tunnels = new Map<Duplex, Duplex>();
  private listening = false;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly config: ProxyConfig,
    private readonly backend: ProxyBackend,
    options: ProxyServerOptions,
  ) {
    this.log = (options.logger ?? silentLogger).child({ component: 'proxy' });
    const target = parseHostPort(config.target);
    if (config.target === '' || target === undefined || target.port === 0) {
      throw new ProxyError(
        'ERR_PROXY_INVALID_CONFIG',
        `proxy.target: ${JSON.stringify(config.target)} is not the host:port of the application, e.g. localhost:8081`,
      );
    }
    const listenAt = parseHostPort(config.addr);
    if (listenAt === undefined) {
      throw new ProxyError(
        'ERR_PROXY_INVALID_CONFIG',
        `proxy.addr: ${JSON.stringify(config.addr)} is not a listen address; expected [host]:port, e.g. :8080`,
      );
    }
    if (config.db === '') {
      throw new ProxyError(
        'ERR_PROXY_INVALID_CONFIG',
        'proxy.db: "" is not a database name; the proxy needs the database whose TXID it tracks',
      );
    }
    this.listenAt = listenAt;
    this.router = new Router({ config, backend, txidWaitTimeoutMs: optionMs(options, 'txidWaitTimeoutMs'), log: this.log });
    this.upstreamRetryTimeoutMs = optionMs(options, 'upstreamRetryTimeoutMs');
    this.retryIntervalMs = Math.max(1, optionMs(options, 'upstreamRetryIntervalMs'));
    this.cookieExpiryMs = optionMs(options, 'cookieExpiryMs');
    this.closeTimeoutMs = optionMs(options, 'closeTimeoutMs');
    this.now = options.now ?? Date.now;

    this.localOrigin = originOf(target.host, target.port);
    // One keep-alive pool for the app on this node, one agent (a pool per
    // origin) for other nodes' proxies. Timeouts are per request (relay.ts).
    this.localPool = new Pool(this.localOrigin, { connect: { timeout: 10_000 } });
    const primaryTLS = options.primaryTLS;
    this.primaryTLS = primaryTLS;
    this.agent = new Agent({
      connect:
        primaryTLS === undefined
          ? { timeout: 10_000 }
          : (opts, callback) => buildConnector({ ...primaryTLS(), timeout: 10_000 })(opts, callback),
    });

    this.timeouts = serverTimeouts(config);
    this.server = http.createServer({
      requestTimeout: this.timeouts.requestTimeout,
      headersTimeout: this.timeouts.headersTimeout,
      connectionsCheckingInterval: this.timeouts.connectionsCheckingInterval,
    });
    this.server.keepAliveTimeout = this.timeouts.keepAliveTimeout;
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  // ---- lifecycle -------------------------------------------------------

  listen(): Promise<void> {
    if (this.closing !== null)
      return Promise.reject(new ProxyError('ERR_PROXY_CLOSED', `proxy on ${this.config.addr} was closed; create a new one`));
    if (this.listening)
      return Promise.reject(new ProxyError('ERR_PROXY_ALREADY_LISTENING', `proxy is already listening on ${this.config.addr}`));
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new ProxyError('ERR_PROXY_LISTEN', `proxy.addr: cannot listen on ${JSON.stringify(this.config.addr)}: ${describeError(err)}`, {
            cause: err,
          }),
        );
      };
      this.server.once('error', onError);
      const host = this.listenAt.host === '' ? undefined : this.listenAt.host;
      this.server.listen({ port: this.listenAt.port, host }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log.error({ err: describeError(err) }, 'proxy: listener error'));
        this.listening = true;
        this.log.info({ addr: this.url(), target: this.localOrigin, db: this.config.db }, 'proxy: listening');
        resolve();
      });
    });
  }

  address(): AddressInfo {
    const a = this.server.address();
    if (!this.listening || a === null || typeof a === 'string') {
      throw new ProxyError('ERR_PROXY_NOT_LISTENING', `proxy on ${JSON.stringify(this.config.addr)} is not listening; call listen() first`);
    }
    return a;
  }

  url(): string {
    const a = this.address();
    const wildcard = a.address === '' || a.address === '0.0.0.0' || a.address === '::';
    return originOf(wildcard ? 'localhost' : a.address, a.port);
  }

  stats(): ProxyStats {
    return { requests: this.requests + this.pendingUpgrades.size, tunnels: this.tunnels.size };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdownNow();
    return this.closing;
  }

  private async shutdownNow(): Promise<void> {
    const serverClosed = this.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    this.listening = false;
    this.server.closeIdleConnections();
    // A tunnel has no natural end; ending it (after its queued bytes) is
    // the WebSocket equivalent of letting a request finish.
    for (const [client, upstream] of this.tunnels) {
      endSoon(client);
      endSoon(upstream);
    }
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.closeTimeoutMs);
    await this.idle.wait(() => this.requests === 0 && this.pendingUpgrades.size === 0 && this.tunnels.size === 0, deadline.signal);
    clearTimeout(timer);

    const reason = new ProxyError('ERR_PROXY_CLOSED', 'proxy is shutting down');
    for (const ac of this.inflight) ac.abort(reason);
    this.server.closeAllConnections();
    for (const s of this.pendingUpgrades) s.destroy();
    for (const [client, upstream] of this.tunnels) {
      client.destroy();
      upstream.destroy();
    }
    // Every socket is destroyed by now; the bound only guards against a
    // socket Node does not report closed.
    await Promise.race([serverClosed, new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref())]);
    await Promise.allSettled([this.localPool.destroy(), this.agent.destroy()]);
    this.log.info({ addr: this.config.addr }, 'proxy: closed');
  }

  // ---- plain requests ----------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    // In flight until both the response has closed and the routing work
    // (waits, retries, relaying) has returned, so close() and stats() see
    // a retry loop or a wait that outlives its client.
    this.requests++;
    let open = 2;
    const release = (): void => {
      if (--open > 0) return;
      this.requests--;
      this.idle.notify();
    };
    const ac = new AbortController();
    this.inflight.add(ac);
    if (this.closing !== null) res.setHeader('connection', 'close');
    let writeTimer: NodeJS.Timeout | undefined;
    if (this.timeouts.writeTimeout > 0) {
      // Go's WriteTimeout: the whole response must be out in time, or the connection is cut.
      writeTimer = setTimeout(() => {
        if (!res.writableFinished) res.destroy();
      }, this.timeouts.writeTimeout);
    }
    res.once('close', () => {
      if (writeTimer !== undefined) clearTimeout(writeTimer);
      if (!res.writableFinished) ac.abort(new Error('client closed the connection'));
      if (this.closing !== null) setImmediate(() => this.server.closeIdleConnections());
      release();
    });

    const exchange: Exchange = {
      req,
      path: requestPath(req.url ?? '/'),
      signal: ac.signal,
      text: (status, message) => sendText(res, status, message),
      forward: (to, setCookie) => this.forwardHTTP(req, res, ac.signal, to, setCookie),
    };
    this.router
      .route(exchange)
      .catch((err: unknown) => {
        this.log.error({ method: req.method, url: req.url, err: describeError(err) }, 'proxy: request failed');
        sendText(res, 500, `Proxy error: ${oneLine(describeError(err))}`);
      })
      .finally(() => {
        this.inflight.delete(ac);
        release();
      });
  }

  private async forwardHTTP(
    req: IncomingMessage,
    res: ServerResponse,
    signal: AbortSignal,
    to: Destination,
    setCookie: boolean,
  ): Promise<void> {
    const path = originForm(req.url ?? '/');
    if (path === null) {
      sendText(res, 400, `Proxy error: request target ${JSON.stringify(req.url)} cannot be forwarded`);
      return;
    }
    const toPrimary = to === 'primary';
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    const outcome = await relay({
      dispatcher: toPrimary ? this.agent : this.localPool,
      origin: toPrimary ? this.primaryOrigin : this.localOriginFn,
      method: req.method ?? 'GET',
      path,
      headers: upstreamRequestHeaders(req.rawHeaders, { clientAddress: req.socket.remoteAddress, hop: toPrimary }),
      req,
      res,
      hasBody: te !== undefined || (cl !== undefined && cl !== '0'),
      signal,
      retryDeadline: Date.now() + this.retryWindow(to),
      retryIntervalMs: this.retryIntervalMs,
      setCookie: setCookie ? this.txidCookie : undefined,
      onRetry: this.logRetry,
    });
    this.report(outcome, to, req, (status, message) => sendText(res, status, message));
  }

  // ---- Upgrade requests (WebSocket, ...) ------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Pending until the routing work has returned and the socket has either
    // closed or become a tunnel (tunnels are tracked apart).
    this.pendingUpgrades.add(socket);
    let open = 2;
    const release = (): void => {
      if (--open > 0) return;
      if (this.pendingUpgrades.delete(socket)) this.idle.notify();
    };
    let socketDone = false;
    const socketSettled = (): void => {
      if (socketDone) return;
      socketDone = true;
      release();
    };
    const ac = new AbortController();
    this.inflight.add(ac);
    socket.on('error', (err) => this.log.debug({ err: describeError(err) }, 'proxy: client socket error'));
    socket.once('close', () => {
      ac.abort(new Error('client closed the connection'));
      socketSettled();
    });

    const exchange: Exchange = {
      req,
      path: requestPath(req.url ?? '/'),
      signal: ac.signal,
      text: (status, message) => sendRawText(socket, status, message),
      forward: (to, setCookie) => this.forwardUpgrade(req, socket, head, ac.signal, to, setCookie, socketSettled),
    };
    this.router
      .route(exchange)
      .catch((err: unknown) => {
        this.log.error({ method: req.method, url: req.url, err: describeError(err) }, 'proxy: upgrade request failed');
        sendRawText(socket, 500, `Proxy error: ${oneLine(describeError(err))}`);
      })
      .finally(() => {
        this.inflight.delete(ac);
        release();
      });
  }

  private async forwardUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    signal: AbortSignal,
    to: Destination,
    setCookie: boolean,
    tunnelled: () => void,
  ): Promise<void> {
    const path = originForm(req.url ?? '/');
    if (path === null) {
      sendRawText(socket, 400, `Proxy error: request target ${JSON.stringify(req.url)} cannot be forwarded`);
      return;
    }
    const toPrimary = to === 'primary';
    const outcome = await relayUpgrade({
      req,
      socket,
      head,
      origin: toPrimary ? this.primaryOrigin : this.localOriginFn,
      path,
      headers: upstreamRequestHeaders(req.rawHeaders, {
        clientAddress: req.socket.remoteAddress,
        hop: toPrimary,
        upgrade: req.headers.upgrade ?? 'websocket',
      }),
      signal,
      retryDeadline: Date.now() + this.retryWindow(to),
      retryIntervalMs: this.retryIntervalMs,
      setCookie: setCookie ? this.txidCookie : undefined,
      onRetry: this.logRetry,
      ...(toPrimary && this.primaryTLS !== undefined ? { tls: this.primaryTLS } : {}),
      onTunnel: (client, upstream) => {
        this.tunnels.set(client, upstream);
        tunnelled();
        const forget = (): void => {
          if (client.destroyed && upstream.destroyed && this.tunnels.delete(client)) this.idle.notify();
        };
        client.once('close', forget);
        upstream.once('close', forget);
        if (this.closing !== null) {
          endSoon(client);
          endSoon(upstream);
        }
      },
    });
    this.report(outcome, to, req, (status, message) => sendRawText(socket, status, message));
  }

  // ---- helpers -----------------------------------------------------------

  private readonly localOriginFn = (): string => this.localOrigin;

  /** The primary's proxy, re-read on every attempt; null once this node is primary itself or none is known. */
  private readonly primaryOrigin = (): string | null => (this.backend.isPrimary() ? null : this.backend.primaryProxyURL());

  /**
   * The TXID after the write: read when the app's response headers arrive,
   * i.e. after the app has committed and started answering.
   */
  private readonly txidCookie = (): string | null => {
    const txid = this.backend.txid(this.config.db);
    return txid === null ? null : formatTXIDCookie(txid, this.now(), this.cookieExpiryMs);
  };

  private readonly logRetry = (attempt: number, err: unknown, origin: string | null): void => {
    this.log.debug(
      { upstream: origin, attempt, err: err === null ? 'no primary known' : describeError(err) },
      'proxy: upstream unavailable; retrying',
    );
  };

  /** The app gets the long window (it may be starting); another node's proxy gets at most primary-redirect-timeout. */
  private retryWindow(to: Destination): number {
    return to === 'local' ? this.upstreamRetryTimeoutMs : Math.min(this.upstreamRetryTimeoutMs, this.config.primaryRedirectTimeoutMs);
  }

  private report(
    outcome: RelayOutcome | UpgradeOutcome,
    to: Destination,
    req: IncomingMessage,
    text: (status: number, message: string) => void,
  ): void {
    switch (outcome.kind) {
      case 'unavailable':
        text(503, 'Proxy error: no primary available');
        return;
      case 'failed': {
        const where = to === 'local' ? this.localOrigin : `the primary's proxy ${this.backend.primaryProxyURL() ?? '(no longer known)'}`;
        const reason = oneLine(describeError(outcome.error));
        this.log.warn({ method: req.method, url: req.url, upstream: where, err: reason }, 'proxy: upstream request failed');
        if (!('responded' in outcome) || !outcome.responded) text(502, `Proxy error: ${where}: ${reason}`);
        return;
      }
      default:
        return;
    }
  }
}
