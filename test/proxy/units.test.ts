import { afterEach, describe, expect, it } from 'vitest';
import {
  ConditionWaiters,
  TXIDWaiters,
  compilePathPattern,
  createProxyServer,
  downstreamResponseHeaders,
  formatTXIDCookie,
  isProxyError,
  originForm,
  PathMatcher,
  primaryProxyURLFor,
  rawResponseHeaders,
  readTXIDCookie,
  requestPath,
  serverTimeouts,
  upstreamRequestHeaders,
} from '../../src/http/proxy/index.js';
import { proxyConfig } from './apps.js';
import { FakeBackend } from './fake-backend.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

describe('path patterns', () => {
  it('treats * as the only wildcard and anchors both ends', () => {
    const re = compilePathPattern('/static/*', 'proxy.passthrough[0]');
    expect(re.test('/static/')).toBe(true);
    expect(re.test('/static/a/b.css')).toBe(true);
    expect(re.test('/static')).toBe(false);
    expect(re.test('/x/static/a')).toBe(false);
    const dots = compilePathPattern('/v1.0/(a)+[b]?', 'f');
    expect(dots.test('/v1.0/(a)+[b]?')).toBe(true);
    expect(dots.test('/v1x0/(a)+[b]?')).toBe(false);
    expect(dots.test('/v1.0/aa[b]')).toBe(false);
    const mid = compilePathPattern('/a/*/b', 'f');
    expect(mid.test('/a/x/y/b')).toBe(true);
    expect(mid.test('/a/x/b/c')).toBe(false);
    expect(compilePathPattern('*', 'f').test('/anything\nat all')).toBe(true);
  });

  it('rejects an empty pattern, naming the field', () => {
    expect(() => new PathMatcher(['/ok', ''], 'proxy.always-forward')).toThrow(/proxy\.always-forward\[1\]: ""/);
    expect(new PathMatcher([], 'f').matches('/')).toBe(false);
  });

  it('matches against the decoded path without the query', () => {
    expect(requestPath('/a/b?x=/c')).toBe('/a/b');
    expect(requestPath('/caf%C3%A9/x%20y')).toBe('/café/x y');
    expect(requestPath('/bad%zz')).toBe('/bad%zz');
    expect(requestPath('http://host:1/abs/path?q')).toBe('/abs/path');
    expect(originForm('/p?q=1')).toBe('/p?q=1');
    expect(originForm('http://h/p?q=1')).toBe('/p?q=1');
    expect(originForm('*')).toBeNull();
    expect(originForm('example.com:443')).toBeNull();
  });
});

describe('__txid cookie', () => {
  it('reads 16 hex digits, either case, first occurrence, quoted or not', () => {
    expect(readTXIDCookie(undefined)).toEqual({ kind: 'absent' });
    expect(readTXIDCookie('a=1; b=2')).toEqual({ kind: 'absent' });
    expect(readTXIDCookie('a=1; __txid=00000000000000ff; b=2')).toEqual({ kind: 'txid', txid: 255n });
    expect(readTXIDCookie('__txid=00000000000000FF')).toEqual({ kind: 'txid', txid: 255n });
    expect(readTXIDCookie('__txid="0000000000000010"')).toEqual({ kind: 'txid', txid: 16n });
    expect(readTXIDCookie('__txid=0000000000000001; __txid=0000000000000002')).toEqual({ kind: 'txid', txid: 1n });
    expect(readTXIDCookie(['x=1', '__txid=ffffffffffffffff'])).toEqual({ kind: 'txid', txid: 0xffffffffffffffffn });
    // LiteFS treats TXID 0 as "no cookie".
    expect(readTXIDCookie('__txid=0000000000000000')).toEqual({ kind: 'absent' });
    expect(readTXIDCookie('my__txid=0000000000000003')).toEqual({ kind: 'absent' });
  });

  it('flags malformed values', () => {
    expect(readTXIDCookie('__txid=12')).toEqual({ kind: 'malformed', value: '12' });
    expect(readTXIDCookie('__txid=000000000000000g')).toEqual({ kind: 'malformed', value: '000000000000000g' });
    expect(readTXIDCookie('__txid=00000000000000001')).toEqual({ kind: 'malformed', value: '00000000000000001' });
    expect(readTXIDCookie('__txid=')).toEqual({ kind: 'malformed', value: '' });
  });

  it('formats Set-Cookie as LiteFS does', () => {
    expect(formatTXIDCookie(0xabcn, Date.UTC(2024, 1, 29, 23, 58, 0))).toBe(
      '__txid=0000000000000abc; Path=/; HttpOnly; Expires=Fri, 01 Mar 2024 00:03:00 GMT',
    );
    expect(formatTXIDCookie(1n, 0, 1000)).toBe('__txid=0000000000000001; Path=/; HttpOnly; Expires=Thu, 01 Jan 1970 00:00:01 GMT');
  });
});

describe('header rewriting', () => {
  it('drops hop-by-hop and Connection-named fields, Expect and the hop marker; extends forwarding fields', () => {
    const out = upstreamRequestHeaders(
      [
        'Host',
        'app.example',
        'Connection',
        'keep-alive, X-Private',
        'connection',
        'Upgrade',
        'X-Private',
        'p',
        'Keep-Alive',
        'timeout=5',
        'TE',
        'trailers',
        'Trailer',
        'X-Sum',
        'Transfer-Encoding',
        'chunked',
        'Upgrade',
        'websocket',
        'Proxy-Authorization',
        'Basic x',
        'Proxy-Foo',
        'y',
        'Expect',
        '100-continue',
        'Litefs-Proxy-Hop',
        '1',
        'X-Forwarded-For',
        '10.0.0.1',
        'X-Forwarded-For',
        '10.0.0.2',
        'Forwarded',
        'for=10.0.0.1',
        'Host',
        'second.example',
        'Content-Length',
        '3',
        'X-Keep',
        'a',
        'X-Keep',
        'b',
      ],
      { clientAddress: '::1', hop: false },
    );
    expect(out).toEqual([
      'Host',
      'app.example',
      'Content-Length',
      '3',
      'X-Keep',
      'a',
      'X-Keep',
      'b',
      'X-Forwarded-For',
      '10.0.0.1, 10.0.0.2, ::1',
      'Forwarded',
      'for=10.0.0.1, for="[::1]";host="app.example";proto=http',
    ]);
  });

  it('adds the hop marker toward another proxy and keeps Upgrade for tunnels', () => {
    const out = upstreamRequestHeaders(['Host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'websocket'], {
      clientAddress: '10.1.2.3',
      hop: true,
      upgrade: 'websocket',
    });
    expect(out).toEqual([
      'Host',
      'h',
      'X-Forwarded-For',
      '10.1.2.3',
      'Forwarded',
      'for=10.1.2.3;host="h";proto=http',
      'Litefs-Proxy-Hop',
      '1',
      'Connection',
      'Upgrade',
      'Upgrade',
      'websocket',
    ]);
  });

  it('filters response headers', () => {
    expect(
      downstreamResponseHeaders({
        'content-type': 'text/plain',
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'proxy-authenticate': 'Basic',
        'set-cookie': ['a=1', 'b=2'],
        'content-length': '5',
      }),
    ).toEqual({ 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'content-length': '5' });
    expect(
      rawResponseHeaders(['Upgrade', 'websocket', 'Connection', 'Upgrade', 'Keep-Alive', 'x', 'Sec-WebSocket-Accept', 'k'], true),
    ).toEqual(['Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Accept', 'k']);
    expect(
      rawResponseHeaders(['Transfer-Encoding', 'chunked', 'Content-Length', '3', 'Connection', 'x-a', 'X-A', '1', 'X-B', '2'], false),
    ).toEqual(['Content-Length', '3', 'X-B', '2']);
  });
});

describe('server timeouts (Go http.Server semantics)', () => {
  it('falls back to the read timeout, caps the header timeout and tightens the check interval', () => {
    expect(serverTimeouts({ readTimeoutMs: 0, readHeaderTimeoutMs: 10_000, writeTimeoutMs: 0, idleTimeoutMs: 30_000 })).toEqual({
      requestTimeout: 0,
      headersTimeout: 10_000,
      keepAliveTimeout: 30_000,
      connectionsCheckingInterval: 2_500,
      writeTimeout: 0,
    });
    expect(serverTimeouts({ readTimeoutMs: 4_000, readHeaderTimeoutMs: 0, writeTimeoutMs: 7, idleTimeoutMs: 0 })).toEqual({
      requestTimeout: 4_000,
      headersTimeout: 4_000,
      keepAliveTimeout: 4_000,
      connectionsCheckingInterval: 1_000,
      writeTimeout: 7,
    });
    expect(serverTimeouts({ readTimeoutMs: 1_000, readHeaderTimeoutMs: 5_000, writeTimeoutMs: 0, idleTimeoutMs: 0 }).headersTimeout).toBe(
      1_000,
    );
    expect(serverTimeouts({ readTimeoutMs: 0, readHeaderTimeoutMs: 0, writeTimeoutMs: 0, idleTimeoutMs: 0 })).toEqual({
      requestTimeout: 0,
      headersTimeout: 0,
      keepAliveTimeout: 0,
      connectionsCheckingInterval: 30_000,
      writeTimeout: 0,
    });
    expect(
      serverTimeouts({ readTimeoutMs: 0, readHeaderTimeoutMs: 100, writeTimeoutMs: 0, idleTimeoutMs: 0 }).connectionsCheckingInterval,
    ).toBe(50);
  });
});

describe('waiters', () => {
  it('TXIDWaiters wakes only satisfied waiters of the right database and drops aborted ones', async () => {
    const w = new TXIDWaiters();
    let current: bigint | null = 3n;
    expect(await w.wait('a', 3n, () => current, new AbortController().signal)).toBe(true);
    expect(w.size).toBe(0);
    const ac = new AbortController();
    const order: string[] = [];
    const p5 = w.wait('a', 5n, () => current, new AbortController().signal).then((v) => order.push(`a5:${v}`));
    const p9 = w.wait('a', 9n, () => current, ac.signal).then((v) => order.push(`a9:${v}`));
    const pb = w.wait('b', 1n, () => null, new AbortController().signal).then((v) => order.push(`b1:${v}`));
    expect(w.size).toBe(3);
    current = 6n;
    w.notify('a', 6n);
    await p5;
    expect(order).toEqual(['a5:true']);
    ac.abort();
    await p9;
    expect(order).toEqual(['a5:true', 'a9:false']);
    w.notify('b', 1n);
    await pb;
    expect(w.size).toBe(0);
    const aborted = new AbortController();
    aborted.abort();
    expect(await w.wait('a', 100n, () => current, aborted.signal)).toBe(false);
    expect(w.size).toBe(0);
  });

  it('ConditionWaiters re-checks on notify and resolves on abort', async () => {
    const w = new ConditionWaiters();
    let ok = false;
    const ac = new AbortController();
    let done = 0;
    const p1 = w.wait(() => ok, new AbortController().signal).then(() => done++);
    const p2 = w.wait(() => false, ac.signal).then(() => done++);
    w.notify();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(0);
    ok = true;
    w.notify();
    await p1;
    expect(w.size).toBe(1);
    ac.abort();
    await p2;
    expect(done).toBe(2);
    expect(w.size).toBe(0);
  });
});

describe('primaryProxyURLFor', () => {
  it("combines the primary's advertised host with this node's proxy port", () => {
    expect(primaryProxyURLFor({ hostname: 'n1', advertiseURL: 'http://n1.internal:20202' }, ':8080')).toBe('http://n1.internal:8080');
    expect(primaryProxyURLFor({ hostname: 'n1', advertiseURL: 'http://[fd00::1]:20202' }, '0.0.0.0:3000')).toBe('http://[fd00::1]:3000');
    expect(primaryProxyURLFor({ hostname: 'n1', advertiseURL: '' }, ':8080')).toBeNull();
    expect(primaryProxyURLFor({ hostname: 'n1', advertiseURL: 'http://n1:20202' }, ':0')).toBeNull();
    expect(primaryProxyURLFor({ hostname: 'n1', advertiseURL: 'ftp://n1:21' }, ':8080')).toBeNull();
  });
});

describe('createProxyServer validation and lifecycle', () => {
  it('rejects unusable config and options with coded errors naming the field', () => {
    const b = FakeBackend.primary();
    const codeOf = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        if (isProxyError(err)) return `${err.code} ${err.message}`;
        throw err;
      }
      return 'no error';
    };
    expect(codeOf(() => createProxyServer(proxyConfig(''), b))).toMatch(/^ERR_PROXY_INVALID_CONFIG proxy\.target: ""/);
    expect(codeOf(() => createProxyServer(proxyConfig('nohost'), b))).toMatch(/^ERR_PROXY_INVALID_CONFIG proxy\.target: "nohost"/);
    expect(codeOf(() => createProxyServer(proxyConfig('127.0.0.1:1', { addr: 'bad' }), b))).toMatch(
      /^ERR_PROXY_INVALID_CONFIG proxy\.addr: "bad"/,
    );
    expect(codeOf(() => createProxyServer(proxyConfig('127.0.0.1:1', { db: '' }), b))).toMatch(/^ERR_PROXY_INVALID_CONFIG proxy\.db/);
    expect(codeOf(() => createProxyServer(proxyConfig('127.0.0.1:1', { passthrough: [''] }), b))).toMatch(
      /^ERR_PROXY_INVALID_CONFIG proxy\.passthrough\[0\]/,
    );
    expect(codeOf(() => createProxyServer(proxyConfig('127.0.0.1:1'), b, { txidWaitTimeoutMs: -1 }))).toMatch(
      /^ERR_PROXY_INVALID_OPTION txidWaitTimeoutMs: -1/,
    );
  });

  it('reports listen errors, address() before listen, and listen() after close()', async () => {
    const b = FakeBackend.primary();
    const first = createProxyServer(proxyConfig('127.0.0.1:1'), b);
    expect(() => first.address()).toThrow(expect.objectContaining({ code: 'ERR_PROXY_NOT_LISTENING' }));
    await first.listen();
    cleanups.push(() => first.close());
    await expect(first.listen()).rejects.toMatchObject({ code: 'ERR_PROXY_ALREADY_LISTENING' });
    const port = first.address().port;
    expect(first.url()).toBe(`http://127.0.0.1:${port}`);
    const second = createProxyServer(proxyConfig('127.0.0.1:1', { addr: `127.0.0.1:${port}` }), b);
    cleanups.push(() => second.close());
    await expect(second.listen()).rejects.toMatchObject({ code: 'ERR_PROXY_LISTEN', message: expect.stringContaining('EADDRINUSE') });
    await first.close();
    await first.close(); // idempotent
    await expect(first.listen()).rejects.toMatchObject({ code: 'ERR_PROXY_CLOSED' });
  });
});
