import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { ProxyConfig } from '../../src/config/types.js';
import { acceptWebSocket } from './ws.js';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

export type AppHandler = (req: IncomingMessage, res: ServerResponse, app: App) => void;

/** An application server on 127.0.0.1 standing in for the user's app behind the proxy. */
export interface App {
  name: string;
  port: number;
  /** host:port, as proxy.target. */
  target: string;
  server: http.Server;
  /** Requests the default handler answered (and custom handlers that call app.record). */
  seen: SeenRequest[];
  /** Upgrade requests this app received. */
  upgrades: SeenRequest[];
  events: EventEmitter;
  record(req: IncomingMessage, body: string): void;
  close(): Promise<void>;
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The default app: records the request and answers JSON describing it.
 * `x-respond-status` picks the status; `x-respond-cookies` (comma list) adds Set-Cookie headers.
 */
export const echoHandler: AppHandler = (req, res, app) => {
  readBody(req).then(
    (body) => {
      app.record(req, body);
      const status = Number(req.headers['x-respond-status'] ?? 200);
      const cookies = String(req.headers['x-respond-cookies'] ?? '')
        .split(',')
        .filter((c) => c !== '');
      const headers: Record<string, string | string[]> = { 'content-type': 'application/json', 'x-app': app.name };
      if (cookies.length > 0) headers['set-cookie'] = cookies;
      res.writeHead(status, headers);
      res.end(JSON.stringify({ app: app.name, method: req.method, url: req.url, body }));
    },
    () => res.destroy(),
  );
};

export async function startApp(name: string, handler: AppHandler = echoHandler, port = 0): Promise<App> {
  const server = http.createServer();
  const app: App = {
    name,
    port: 0,
    target: '',
    server,
    seen: [],
    upgrades: [],
    events: new EventEmitter(),
    record(req, body) {
      app.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      app.events.emit('request', req);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('request', (req, res) => handler(req, res, app));
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    app.upgrades.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '' });
    if ((req.url ?? '').startsWith('/ws-denied')) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nno socket\n');
      return;
    }
    acceptWebSocket(req, socket, head, (text) => `${name}:${text}`);
  });
  const prevClose = app.close;
  app.close = async () => {
    for (const s of sockets) s.destroy();
    await prevClose();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  app.port = (server.address() as AddressInfo).port;
  app.target = `127.0.0.1:${app.port}`;
  return app;
}

/** A proxy config as the config loader would produce it, for tests. */
export function proxyConfig(target: string, overrides: Partial<ProxyConfig> = {}): ProxyConfig {
  return {
    enabled: true,
    addr: '127.0.0.1:0',
    target,
    db: 'db',
    debug: true,
    passthrough: [],
    alwaysForward: [],
    maxLagMs: 10_000,
    primaryRedirectTimeoutMs: 5_000,
    readTimeoutMs: 0,
    readHeaderTimeoutMs: 10_000,
    writeTimeoutMs: 0,
    idleTimeoutMs: 30_000,
    ...overrides,
  };
}
