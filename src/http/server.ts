import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { describeError, type Logger } from '../internal/index.js';
import { LogThrottle, NodeSecurity, type Refusal } from './auth/index.js';
import { API_LIMITS, h2Refusal, isTLSClientHello, plaintextRefusal } from './limits.js';

export type ApiRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type ApiResponse = http.ServerResponse | http2.Http2ServerResponse;
export type ApiHandler = (req: ApiRequest, res: ApiResponse, url: URL) => Promise<void> | void;

export interface Route {
  method: string;
  path: string;
  handler: ApiHandler;
  /** Only over HTTP/2 (the replication stream); HTTP/1 callers get 426. */
  http2Only?: boolean;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  logger: Logger;
  /** Sent as Litefs-Id on every response (`%016X`). */
  nodeID: string;
  routes: Route[];
  /** Token and TLS (default: none, LiteFS's cleartext API). */
  security?: NodeSecurity;
}

/** The connection preface every HTTP/2 prior-knowledge client sends first. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/**
 * The node's API on one port, as LiteFS serves it: HTTP/2 cleartext with
 * prior knowledge (what `/stream` speaks, and what a Go LiteFS node dials),
 * and HTTP/1.1 on the same port for curl, Prometheus and undici. Each
 * connection is routed by its first bytes. With http.tls the port speaks
 * TLS instead, HTTP/2 or HTTP/1.1 chosen by ALPN; a client speaking the
 * wrong one of cleartext and TLS gets told so rather than a hang.
 *
 * With a token, every request is checked before routing, so every route,
 * present and future, is covered and nothing of a refused request's body
 * is read.
 */
export class ApiServer {
  private readonly opts: ApiServerOptions;
  private readonly log: Logger;
  private readonly tcp: net.Server;
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.Http2Session>();
  private readonly h1Sockets = new Set<net.Socket>();
  private readonly security: NodeSecurity;
  private readonly tls: tls.Server | null = null;
  private readonly refusals = new LogThrottle(60_000);
  private readonly stopReload: () => void = () => {};

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'http' });
    this.security = opts.security ?? NodeSecurity.none();
    const onRequest = (req: ApiRequest, res: ApiResponse): void => {
      void this.dispatch(req, res);
    };
    // No request timeout: an import of a multi-GB database over a slow link is one request.
    this.h1 = http.createServer(
      {
        keepAliveTimeout: API_LIMITS.keepAliveTimeoutMs,
        requestTimeout: 0,
        headersTimeout: API_LIMITS.headersTimeoutMs,
        maxHeaderSize: API_LIMITS.maxHeaderBytes,
      },
      onRequest,
    );
    // The HTTP/1 server is handed sockets and never listens itself, and
    // Node starts its header-timeout checks on 'listening': start them.
    this.h1.emit('listening');
    this.h2 = http2.createServer(
      {
        settings: {
          initialWindowSize: 4 << 20,
          maxConcurrentStreams: API_LIMITS.maxConcurrentStreams,
          maxHeaderListSize: API_LIMITS.maxHeaderBytes,
        },
        maxHeaderListPairs: API_LIMITS.maxHeaderPairs,
      },
      onRequest,
    );
    this.h2.on('session', (s: http2.Http2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
      closeWhenIdle(s, API_LIMITS.idleTimeoutMs);
    });
    if (this.security.servesTLS) {
      const server = tls.createServer({
        ...this.security.serverOptions(),
        ALPNProtocols: ['h2', 'http/1.1'],
        handshakeTimeout: API_LIMITS.handshakeTimeoutMs,
      });
      server.on('secureConnection', (s: tls.TLSSocket) => this.serveTLS(s));
      server.on('tlsClientError', (err, s) => this.refused(s, 'tls', describeError(err)));
      this.tls = server;
      // New handshakes use the reloaded material; open connections keep theirs.
      this.stopReload = this.security.onReload(() => server.setSecureContext(this.security.secureContextOptions()));
    }
    this.tcp = net.createServer((socket) => this.route(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.tcp.once('error', onError);
      this.tcp.listen(this.opts.port, this.opts.host === '' ? undefined : this.opts.host, () => {
        this.tcp.off('error', onError);
        resolve();
      });
    });
  }

  address(): AddressInfo {
    return this.tcp.address() as AddressInfo;
  }

  /** Stops accepting, ends HTTP/2 sessions (streams see their end), closes sockets. */
  async close(): Promise<void> {
    this.stopReload();
    // Ends the header-timeout checks started in the constructor.
    this.h1.close(() => {});
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const s of this.sessions) s.close();
    // The HTTP/1 server never listened itself, so its closeAllConnections()
    // knows no sockets: end the ones we handed it (idle keep-alives, /events).
    for (const sock of this.h1Sockets) sock.destroySoon();
    const deadline = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
      for (const sock of this.sockets) sock.destroy();
    }, 2000);
    deadline.unref();
    await closed;
    clearTimeout(deadline);
  }

  private route(socket: net.Socket): void {
    this.sockets.add(socket);
    // net.Server sockets start with Nagle on (http.Server turns it off for
    // its own). HTTP/2 DATA frames and WINDOW_UPDATEs then wait out the
    // peer's delayed ACK: ~1 MB/s for an LTX file on loopback.
    socket.setNoDelay(true);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // A connection that never says anything is dropped; once routed, the
    // TLS handshake, HTTP/1 and HTTP/2 timeouts take over.
    socket.setTimeout(API_LIMITS.firstBytesTimeoutMs, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const tlsHello = isTLSClientHello(head);
      const n = Math.min(head.length, H2_PREFACE.length);
      const h2 = !tlsHello && head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2 && head.length < H2_PREFACE.length) return;
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      if (this.tls !== null) {
        if (!tlsHello) return this.refusePlaintext(socket, h2);
        socket.unshift(head);
        this.tls.emit('connection', socket);
      } else if (tlsHello) {
        // Nothing this port could answer would be understood: close, and the
        // client reports a handshake cut short (see auth/explain.ts).
        this.refused(socket, 'tls-on-cleartext', 'a TLS client connected to the cleartext API port');
        socket.destroy();
      } else if (h2) {
        // The HTTP/2 session takes over the socket's handle, first feeding
        // itself what is already in the socket's read buffer (Node's
        // setupHandle), so the bytes put back with unshift() reach it. A JS
        // Duplex in between would cost two thirds of the stream's throughput.
        socket.unshift(head);
        this.h2.emit('connection', socket);
      } else {
        socket.unshift(head);
        this.serveH1(socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  }

  private serveH1(socket: net.Socket): void {
    this.h1Sockets.add(socket);
    socket.once('close', () => this.h1Sockets.delete(socket));
    this.h1.emit('connection', socket);
  }

  private serveTLS(socket: tls.TLSSocket): void {
    if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
    else this.serveH1(socket);
  }

  /** A cleartext client on the TLS port: one answer it can read, then close. */
  private refusePlaintext(socket: net.Socket, h2: boolean): void {
    this.refused(socket, 'cleartext-on-tls', 'a cleartext client connected to the TLS API port');
    socket.end(h2 ? h2Refusal() : plaintextRefusal());
    lingerThenClose(socket);
    socket.resume();
  }

  /**
   * 401 with a one-line JSON reason, before anything of the body is read.
   * The connection (HTTP/1) or stream (HTTP/2) is then closed, so a client
   * cannot make the node take in an upload it will never accept.
   */
  private unauthorized(req: ApiRequest, res: ApiResponse, refusal: Refusal): void {
    this.refused(req.socket as net.Socket, refusal.code, refusal.reason, req.url?.split('?')[0]);
    res.statusCode = 401;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('WWW-Authenticate', 'Bearer realm="litefs"');
    if (res instanceof http2.Http2ServerResponse) {
      const stream = res.stream;
      res.once('finish', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
    } else {
      res.setHeader('Connection', 'close');
      lingerThenClose(req.socket as net.Socket);
    }
    res.end(`${JSON.stringify({ error: refusal.reason, code: refusal.code })}\n`);
  }

  /** Logs a refused connection or request, at most once a minute per client address and reason. */
  private refused(socket: net.Socket | null, kind: string, reason: string, path?: string): void {
    const remote = socket?.remoteAddress ?? 'unknown';
    if (!this.refusals.allow(`${remote} ${kind}`)) return;
    this.log.warn({ remote, ...(path !== undefined ? { path } : {}), reason }, 'refused an API client (logged once a minute per client)');
  }

  private async dispatch(req: ApiRequest, res: ApiResponse): Promise<void> {
    const refusal = this.security.clientCertRefusal(tlsSocketOf(req)) ?? this.security.refuse(req.headers.authorization);
    if (refusal !== null) return this.unauthorized(req, res, refusal);
    res.setHeader('Litefs-Id', this.opts.nodeID);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendText(res, 400, 'bad request target');
      return;
    }
    const route = this.opts.routes.find((r) => r.path === url.pathname);
    if (route === undefined) {
      sendText(res, 404, `not found: ${url.pathname}`);
      return;
    }
    if (req.method !== route.method) {
      res.setHeader('Allow', route.method);
      sendText(res, 405, `method ${req.method ?? ''} not allowed on ${url.pathname}`);
      return;
    }
    if (route.http2Only === true && req.httpVersionMajor !== 2) {
      sendText(res, 426, `${url.pathname} needs HTTP/2 (h2c with prior knowledge)`);
      return;
    }
    try {
      await route.handler(req, res, url);
    } catch (err) {
      this.log.error({ err, path: url.pathname }, 'API handler failed');
      if (!res.headersSent) sendText(res, 500, describeError(err));
      else res.destroy();
    }
  }
}

/** The TLS connection a request came on, if it came on one. */
function tlsSocketOf(req: ApiRequest): tls.TLSSocket | undefined {
  const socket = req instanceof http2.Http2ServerRequest ? req.stream.session?.socket : req.socket;
  return socket instanceof tls.TLSSocket ? socket : undefined;
}

/**
 * Closes an HTTP/1 connection after its 401 without resetting it: the
 * client may still be sending a body, and a close with unread bytes makes
 * the kernel send RST, which can destroy the answer before the client reads
 * it. What arrives meanwhile is discarded (Node's request dump) and the
 * wait is bounded in bytes and time.
 */
function lingerThenClose(socket: net.Socket): void {
  const start = socket.bytesRead;
  const timer = setTimeout(() => socket.destroy(), API_LIMITS.lingerMs);
  timer.unref();
  const onData = (): void => {
    if (socket.bytesRead - start > API_LIMITS.lingerBytes) socket.destroy();
  };
  socket.on('data', onData);
  socket.once('close', () => {
    clearTimeout(timer);
    socket.off('data', onData);
  });
}

/**
 * HTTP/2 sessions with no open stream are closed after `ms` without a
 * frame; a replica's stream (heartbeats every second) and an /events
 * subscriber waiting for news keep theirs.
 */
function closeWhenIdle(session: http2.Http2Session, ms: number): void {
  let open = 0;
  session.on('stream', (stream: http2.Http2Stream) => {
    open++;
    stream.once('close', () => open--);
  });
  session.setTimeout(ms, () => {
    if (open === 0) session.close();
  });
}

/** A plain-text answer (LiteFS answers errors with text/plain). */
export function sendText(res: ApiResponse, status: number, text: string): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(text.endsWith('\n') ? text : `${text}\n`);
}

export function sendJSON(res: ApiResponse, status: number, value: unknown): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(`${JSON.stringify(value, null, '  ')}\n`);
}

/** Reads a request body up to `limit` bytes (413-worthy errors throw). */
export async function readBody(req: ApiRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error(`request body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
