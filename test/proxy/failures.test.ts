import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createProxyServer } from '../../src/http/proxy/index.js';
import { proxyConfig, startApp, type AppHandler } from './apps.js';
import { bodyOf, open, send } from './client.js';
import { startCluster, startNode, type Cleanups } from './cluster.js';
import { FakeBackend } from './fake-backend.js';
import { CaptureLogger, freePort, until, within } from './util.js';
import { openWebSocket } from './ws.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** An app that records the request, then never answers; it reports when its side of the exchange closes. */
const hangingApp: AppHandler = (req, res, app) => {
  app.record(req, '');
  res.on('close', () => app.events.emit('closed', res.writableFinished));
};

describe('proxy upstream failures and connection handling', () => {
  it('retries a refused connection every interval until the app starts listening', async () => {
    const port = await freePort();
    const log = new CaptureLogger();
    const proxy = createProxyServer(proxyConfig(`127.0.0.1:${port}`), FakeBackend.primary({ db: 1n }), { logger: log });
    await proxy.listen();
    cleanups.push(() => proxy.close());

    const reply = send(proxy.url(), '/boot', { method: 'POST', body: 'early' });
    const retry = await within(log.waitFor('upstream unavailable; retrying'), 10_000, 'a refused attempt');
    expect(retry.fields['upstream']).toBe(`http://127.0.0.1:${port}`);
    expect(String(retry.fields['err'])).toContain('ECONNREFUSED');
    // The app comes up only after the proxy has been refused at least once.
    const app = await startApp('late', undefined, port);
    cleanups.push(() => app.close());
    const r = await within(reply, 10_000, 'the response');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: 'late', body: 'early' });
    expect(app.seen).toHaveLength(1);
  });

  it('gives up on a refused connection after upstreamRetryTimeoutMs with a one-line 502', async () => {
    const port = await freePort();
    const proxy = createProxyServer(proxyConfig(`127.0.0.1:${port}`), FakeBackend.primary(), { upstreamRetryTimeoutMs: 250 });
    await proxy.listen();
    cleanups.push(() => proxy.close());
    const r = await send(proxy.url(), '/x');
    expect(r.status).toBe(502);
    expect(r.body).toMatch(new RegExp(`^Proxy error: http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`));
    expect(r.body.trimEnd()).not.toContain('\n');
  });

  it('treats a refused dial to "localhost" (both address families) as refused, and gives up with 502', async () => {
    const port = await freePort();
    const log = new CaptureLogger();
    const proxy = createProxyServer(proxyConfig(`localhost:${port}`), FakeBackend.primary(), { logger: log, upstreamRetryTimeoutMs: 250 });
    await proxy.listen();
    cleanups.push(() => proxy.close());
    const r = await send(proxy.url(), '/x');
    expect(r.status).toBe(502);
    expect(r.body).toContain(`http://localhost:${port}`);
    expect(log.records.filter((x) => x.msg.includes('retrying')).length).toBeGreaterThan(0);
  });

  it('retries a refused WebSocket upgrade until the app listens', async () => {
    const port = await freePort();
    const log = new CaptureLogger();
    const proxy = createProxyServer(proxyConfig(`127.0.0.1:${port}`), FakeBackend.primary(), { logger: log });
    await proxy.listen();
    cleanups.push(() => proxy.close());
    const pending = openWebSocket(Number(new URL(proxy.url()).port), '/ws');
    await within(log.waitFor('upstream unavailable; retrying'), 10_000, 'a refused attempt');
    const app = await startApp('late-ws', undefined, port);
    cleanups.push(() => app.close());
    const ws = await within(pending, 10_000, 'the handshake');
    expect(ws.status).toBe(101);
    ws.send('hi');
    expect(await within(ws.next(), 10_000, 'the echo')).toBe('late-ws:hi');
    ws.socket.destroy();
  });

  it('stops retrying as soon as the client disconnects', async () => {
    const port = await freePort();
    const log = new CaptureLogger();
    // A 60 s retry window: only the disconnect can end the request within the test's bound.
    const proxy = createProxyServer(proxyConfig(`127.0.0.1:${port}`), FakeBackend.primary(), {
      logger: log,
      upstreamRetryTimeoutMs: 60_000,
    });
    await proxy.listen();
    cleanups.push(() => proxy.close());
    const { req, response } = open(proxy.url(), '/x');
    response.catch(() => undefined);
    req.end();
    await within(log.waitFor('upstream unavailable; retrying'), 10_000, 'a refused attempt');
    expect(proxy.stats().requests).toBe(1);
    req.destroy();
    await until(() => proxy.stats().requests === 0, 'the request to end');
  });

  it('aborts the upstream request when the client disconnects (local app and through the replica)', async () => {
    const { primary, replica } = await startCluster(cleanups, { primaryHandler: hangingApp, replicaHandler: hangingApp });
    // Local read on the replica.
    let closed = once(replica.app.events, 'closed');
    let c = open(replica.url, '/slow');
    c.response.catch(() => undefined);
    c.req.end();
    await until(() => replica.app.seen.length === 1, 'the app to get the request');
    c.req.destroy();
    expect(await within(closed, 10_000, 'the app side to close')).toEqual([false]);

    // Write forwarded replica → primary: the disconnect travels both hops.
    closed = once(primary.app.events, 'closed');
    c = open(replica.url, '/slow-write', { method: 'POST' });
    c.response.catch(() => undefined);
    c.req.end('x');
    await until(() => primary.app.seen.length === 1, 'the primary app to get the request');
    c.req.destroy();
    expect(await within(closed, 10_000, 'the primary app side to close')).toEqual([false]);
    await until(() => replica.proxy.stats().requests === 0 && primary.proxy.stats().requests === 0, 'both proxies to let go');
  });

  it('releases the TXID wait when the client disconnects', async () => {
    const { replica } = await startCluster(cleanups, { replicaTXID: 1n });
    const waiting = replica.backend.nextTXIDWait();
    const c = open(replica.url, '/r', { headers: { cookie: '__txid=00000000000000ff' } });
    c.response.catch(() => undefined);
    c.req.end();
    await within(waiting, 10_000, 'the wait');
    expect(replica.backend.pendingTXIDWaits).toBe(1);
    c.req.destroy();
    await until(() => replica.backend.pendingTXIDWaits === 0, 'the wait to be dropped');
    expect(replica.app.seen).toHaveLength(0);
  });

  it('answers 502 with a one-line reason when the app drops the connection before answering', async () => {
    const dropping: AppHandler = (req) => req.socket.destroy();
    const node = await startNode(cleanups, 'dropper', FakeBackend.primary(), { handler: dropping });
    const r = await send(node.url, '/boom', { method: 'POST', body: 'x' });
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/^Proxy error: http:\/\/127\.0\.0\.1:\d+: \S.*\n$/);
    expect((await node.log.waitFor('upstream request failed')).level).toBe('warn');
  });

  it('cuts the client connection when the app fails mid-response', async () => {
    const partial: AppHandler = (req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part');
      setImmediate(() => req.socket.destroy());
    };
    const { replica } = await startCluster(cleanups, { primaryHandler: partial });
    const c = open(replica.url, '/partial', { method: 'POST' });
    c.req.end();
    const res = await within(c.response, 10_000, 'headers');
    expect(res.statusCode).toBe(200);
    await expect(within(bodyOf(res), 10_000, 'the truncated body')).rejects.toThrow(/aborted/);
  });

  it('closes connections whose request headers do not arrive within proxy.read-header-timeout', async () => {
    const node = await startNode(cleanups, 'slowloris', FakeBackend.primary(), { config: { readHeaderTimeoutMs: 200 } });
    const sock = net.connect(Number(new URL(node.url).port), '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await within(once(sock, 'close'), 10_000, 'the server to give up on the headers');
    expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
    expect(node.app.seen).toHaveLength(0);
  });

  it('closes keep-alive connections idle for longer than proxy.idle-timeout', async () => {
    const node = await startNode(cleanups, 'idle', FakeBackend.primary(), { config: { idleTimeoutMs: 200 } });
    const sock = net.connect(Number(new URL(node.url).port), '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.write('GET /one HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await within(once(sock, 'close'), 10_000, 'the idle connection to be closed');
    const text = Buffer.concat(chunks).toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(node.app.seen).toHaveLength(1);
  });

  it('cuts a response that exceeds proxy.write-timeout', async () => {
    const node = await startNode(cleanups, 'slow', FakeBackend.primary(), { handler: hangingApp, config: { writeTimeoutMs: 200 } });
    const c = open(node.url, '/slow');
    c.req.end();
    await expect(within(c.response, 10_000, 'the cut')).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(await within(once(node.app.events, 'closed'), 10_000, 'the app side to close')).toEqual([false]);
  });

  it('close() lets a short request finish, ends tunnels and cuts hanging requests within its bound', async () => {
    let release: (() => void) | undefined;
    const released = new Promise<void>((r) => (release = r));
    const app: AppHandler = (req, res, a) => {
      a.record(req, '');
      if (req.url === '/hang') return; // never answers
      void released.then(() => res.end('finished'));
    };
    const node = await startNode(cleanups, 'closing', FakeBackend.primary(), { handler: app, options: { closeTimeoutMs: 500 } });
    const ws = await openWebSocket(Number(new URL(node.url).port), '/ws');
    expect(ws.status).toBe(101);
    const short = open(node.url, '/short');
    short.req.end();
    const hang = open(node.url, '/hang');
    hang.req.end();
    hang.response.catch(() => undefined);
    await until(() => node.app.seen.length === 2, 'both requests at the app');

    const closing = node.proxy.close();
    // New connections are refused at once.
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(Number(new URL(node.url).port), '127.0.0.1');
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
    // The tunnel is ended without waiting for the deadline.
    await within(ws.closed, 10_000, 'the tunnel to end');
    release?.();
    const shortRes = await within(short.response, 10_000, 'the short response');
    expect(await bodyOf(shortRes)).toBe('finished');
    expect(shortRes.headers.connection).toBe('close');
    await within(closing, 10_000, 'close() to finish');
    await expect(hang.response).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(node.proxy.stats()).toEqual({ requests: 0, tunnels: 0 });
  });
});
