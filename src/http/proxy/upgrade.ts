import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { rawResponseHeaders } from './headers.js';
import { isConnectionRefused, pause } from './retry.js';

/**
 * Upgrade requests (WebSocket, h2c) go through node:http, not undici:
 * undici's upgrade() only resolves on a 101 and turns any other answer
 * (a 401 or 403 from the app's WebSocket route, say) into an error, while
 * the client must see that answer. node:http hands us both cases, and
 * the raw sockets to splice after a 101.
 */
export interface UpgradeRelayRequest {
  /** The client's request and its connection, as Node's 'upgrade' event gives them. */
  req: IncomingMessage;
  socket: Duplex;
  /** Bytes the client sent after its request headers. */
  head: Buffer;
  /** Read before every attempt; null = none right now (retried until the deadline). */
  origin: () => string | null;
  path: string;
  /** Already rewritten for this hop, Connection: Upgrade and Upgrade included. */
  headers: string[];
  signal: AbortSignal;
  retryDeadline: number;
  retryIntervalMs: number;
  /** Called when the upstream answers; a returned string is added as a Set-Cookie. */
  setCookie?: (statusCode: number) => string | null;
  onRetry?: (attempt: number, err: unknown, origin: string | null) => void;
  /** Told about each established tunnel so the server can end it on close(). */
  onTunnel?: (client: Duplex, upstream: Duplex) => void;
  /** TLS options for an https:// origin (CA, client certificate), read per attempt. */
  tls?: () => ConnectionOptions;
}

export type UpgradeOutcome =
  /** 101 relayed; the two sockets are spliced until either side closes. */
  | { kind: 'tunnel' }
  /** The upstream refused to switch protocols; its answer was relayed and the connection closed. */
  | { kind: 'response'; statusCode: number }
  | { kind: 'aborted' }
  | { kind: 'unavailable' }
  | { kind: 'failed'; error: unknown };

type Attempt = UpgradeOutcome | { kind: 'retryable'; error: unknown };

export async function relayUpgrade(u: UpgradeRelayRequest): Promise<UpgradeOutcome> {
  for (let attempt = 1; ; attempt++) {
    if (u.signal.aborted) return { kind: 'aborted' };
    const origin = u.origin();
    const result: Attempt = origin === null ? { kind: 'retryable', error: null } : await attemptOnce(u, origin);
    if (result.kind !== 'retryable') return result;
    if (u.signal.aborted) return { kind: 'aborted' };
    const refused = origin === null || isConnectionRefused(result.error);
    if (!refused) return { kind: 'failed', error: result.error };
    if (Date.now() + u.retryIntervalMs > u.retryDeadline) {
      return origin === null ? { kind: 'unavailable' } : { kind: 'failed', error: result.error };
    }
    u.onRetry?.(attempt, result.error, origin);
    if (!(await pause(u.retryIntervalMs, u.signal))) return { kind: 'aborted' };
  }
}

function statusHead(statusCode: number, statusMessage: string | undefined, raw: string[], cookie: string | null, close: boolean): string {
  let head = `HTTP/1.1 ${statusCode} ${statusMessage ?? http.STATUS_CODES[statusCode] ?? ''}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  if (cookie !== null) head += `Set-Cookie: ${cookie}\r\n`;
  if (close) head += 'Connection: close\r\n';
  return `${head}\r\n`;
}

function attemptOnce(u: UpgradeRelayRequest, origin: string): Promise<Attempt> {
  return new Promise<Attempt>((settle) => {
    let done = false;
    const finish = (a: Attempt): void => {
      if (done) return;
      done = true;
      u.signal.removeEventListener('abort', onAbort);
      settle(a);
    };
    let url: URL;
    try {
      url = new URL(origin);
    } catch (err) {
      finish({ kind: 'failed', error: err });
      return;
    }
    const mod = url.protocol === 'https:' ? https : http;
    const upReq = mod.request({
      ...(url.protocol === 'https:' ? (u.tls?.() ?? {}) : {}),
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? undefined : Number(url.port),
      method: u.req.method,
      path: u.path,
      headers: u.headers,
      // A fresh connection: it leaves the pool the moment it is upgraded.
      agent: false,
    });
    const onAbort = (): void => {
      upReq.destroy();
      finish({ kind: 'aborted' });
    };
    u.signal.addEventListener('abort', onAbort, { once: true });

    upReq.on('upgrade', (res: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
      const client = u.socket;
      if (done || client.destroyed) {
        upSocket.destroy();
        finish({ kind: 'aborted' });
        return;
      }
      const cookie = u.setCookie?.(res.statusCode ?? 101) ?? null;
      client.write(statusHead(res.statusCode ?? 101, res.statusMessage, rawResponseHeaders(res.rawHeaders, true), cookie, false));
      if (upHead.length > 0) client.write(upHead);
      if (u.head.length > 0) upSocket.write(u.head);
      if (upSocket instanceof Socket) upSocket.setNoDelay(true);
      splice(client, upSocket);
      u.onTunnel?.(client, upSocket);
      finish({ kind: 'tunnel' });
    });

    upReq.on('response', (res: IncomingMessage) => {
      const client = u.socket;
      if (done || client.destroyed) {
        res.destroy();
        finish({ kind: 'aborted' });
        return;
      }
      const statusCode = res.statusCode ?? 502;
      const cookie = u.setCookie?.(statusCode) ?? null;
      client.write(statusHead(statusCode, res.statusMessage, rawResponseHeaders(res.rawHeaders, false), cookie, true));
      res.pipe(client);
      res.on('error', () => client.destroy());
      client.on('close', () => res.destroy());
      finish({ kind: 'response', statusCode });
    });

    upReq.on('error', (err) => finish(u.signal.aborted ? { kind: 'aborted' } : { kind: 'retryable', error: err }));
    upReq.end();
  });
}

/**
 * Copies bytes both ways. When one side closes, the other is ended after
 * its queued bytes are flushed (a WebSocket close frame must get through);
 * an error on either side cuts both.
 */
function splice(a: Duplex, b: Duplex): void {
  const destroyBoth = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', destroyBoth);
  b.on('error', destroyBoth);
  a.on('close', () => endSoon(b));
  b.on('close', () => endSoon(a));
  a.pipe(b);
  b.pipe(a);
}

/** Ends a socket once its queued bytes are written, then destroys it. */
export function endSoon(s: Duplex): void {
  if (s.destroyed) return;
  if (s instanceof Socket) s.destroySoon();
  else s.end();
}
