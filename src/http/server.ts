import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describeError, type Logger } from '../internal/index.js';

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
}

/** The connection preface every HTTP/2 prior-knowledge client sends first. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/**
 * The node's API on one port, as LiteFS serves it: HTTP/2 cleartext with
 * prior knowledge (what `/stream` speaks, and what a Go LiteFS node dials),
 * and HTTP/1.1 on the same port for curl, Prometheus and undici. Each
 * connection is routed by its first bytes.
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

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'http' });
    const onRequest = (req: ApiRequest, res: ApiResponse): void => {
      void this.dispatch(req, res);
    };
    // No request timeout: an import of a multi-GB database over a slow link is one request.
    this.h1 = http.createServer({ keepAliveTimeout: 30_000, requestTimeout: 0 }, onRequest);
    this.h2 = http2.createServer({ settings: { initialWindowSize: 4 << 20 } }, onRequest);
    this.h2.on('session', (s: http2.Http2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
    });
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
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, H2_PREFACE.length);
      const h2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2 && head.length < H2_PREFACE.length) return;
      socket.off('data', onData);
      socket.pause();
      if (h2) {
        // The HTTP/2 session takes over the socket's handle, first feeding
        // itself what is already in the socket's read buffer (Node's
        // setupHandle), so the bytes put back with unshift() reach it. A JS
        // Duplex in between would cost two thirds of the stream's throughput.
        socket.unshift(head);
        this.h2.emit('connection', socket);
      } else {
        socket.unshift(head);
        this.h1Sockets.add(socket);
        socket.once('close', () => this.h1Sockets.delete(socket));
        this.h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  }

  private async dispatch(req: ApiRequest, res: ApiResponse): Promise<void> {
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
