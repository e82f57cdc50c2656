import { afterEach, describe, expect, it } from 'vitest';
import { readBody, type AppHandler } from './apps.js';
import { bodyOf, open, send, setCookies } from './client.js';
import { startCluster, startNode, type Cleanups } from './cluster.js';
import { FakeBackend } from './fake-backend.js';
import { until, within } from './util.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const FIXED_NOW = Date.UTC(2030, 0, 1, 0, 0, 0);

describe('proxy routing', () => {
  it('sends a GET on a replica to its own app, Host preserved, X-Forwarded-For and Forwarded added', async () => {
    const { primary, replica } = await startCluster(cleanups);
    const r = await send(replica.url, '/hello?x=1', { headers: { host: 'app.example', 'x-custom': 'kept' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-app']).toBe('replica');
    expect(replica.app.seen).toHaveLength(1);
    expect(primary.app.seen).toHaveLength(0);
    const seen = replica.app.seen[0]!;
    expect(seen.url).toBe('/hello?x=1');
    expect(seen.headers.host).toBe('app.example');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['forwarded']).toBe('for=127.0.0.1;host="app.example";proto=http');
    expect(seen.headers['litefs-proxy-hop']).toBeUndefined();
    // A read never gets a TXID cookie.
    expect(setCookies(r.headers)).toEqual([]);
  });

  it('relays HEAD without a body', async () => {
    const { replica } = await startCluster(cleanups);
    const r = await send(replica.url, '/head', { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(replica.app.seen[0]?.method).toBe('HEAD');
  });

  it("forwards a POST on a replica to the primary's app with body and headers intact and relays the answer", async () => {
    const { primary, replica } = await startCluster(cleanups, { options: { now: () => FIXED_NOW } });
    const payload = JSON.stringify({ name: 'widget', n: 42 });
    const r = await send(replica.url, '/items?draft=1', {
      method: 'POST',
      headers: {
        host: 'shop.example',
        'content-type': 'application/json',
        'x-request-id': 'abc-123',
        cookie: 'session=s1',
        'x-respond-status': '201',
        'x-respond-cookies': 'sid=1; Path=/,theme=dark',
      },
      body: payload,
    });
    expect(r.status).toBe(201);
    expect(r.headers['x-app']).toBe('primary');
    expect(JSON.parse(r.body)).toMatchObject({ app: 'primary', method: 'POST', url: '/items?draft=1', body: payload });
    expect(replica.app.seen).toHaveLength(0);
    expect(primary.app.seen).toHaveLength(1);
    const seen = primary.app.seen[0]!;
    expect(seen.body).toBe(payload);
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength(payload)));
    expect(seen.headers['x-request-id']).toBe('abc-123');
    expect(seen.headers.cookie).toBe('session=s1');
    expect(seen.headers.host).toBe('shop.example');
    // Client, then the replica's proxy.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1, 127.0.0.1');
    expect(seen.headers['forwarded']).toBe('for=127.0.0.1;host="shop.example";proto=http, for=127.0.0.1;host="shop.example";proto=http');
    // The hop marker is between proxies only.
    expect(seen.headers['litefs-proxy-hop']).toBeUndefined();
    // The app's own cookies survive, and the primary's proxy adds the TXID.
    expect(setCookies(r.headers)).toEqual([
      'sid=1; Path=/',
      'theme=dark',
      '__txid=0000000000000005; Path=/; HttpOnly; Expires=Tue, 01 Jan 2030 00:05:00 GMT',
    ]);
  });

  it('sets __txid to the TXID after the write: read when the app answers, relayed through the replica', async () => {
    const late: { primaryBackend?: FakeBackend } = {};
    const commitThenAnswer: AppHandler = (req, res, app) => {
      void readBody(req).then((body) => {
        app.record(req, body);
        // The app commits (the store's TXID moves) before it answers.
        late.primaryBackend?.setTXID('db', 0x2an);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('committed');
      });
    };
    const { primary, replica } = await startCluster(cleanups, { primaryHandler: commitThenAnswer, options: { now: () => FIXED_NOW } });
    late.primaryBackend = primary.backend;
    const r = await send(replica.url, '/commit', { method: 'PUT', body: 'x' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('committed');
    expect(setCookies(r.headers)).toEqual(['__txid=000000000000002a; Path=/; HttpOnly; Expires=Tue, 01 Jan 2030 00:05:00 GMT']);
  });

  it('sets no cookie when the tracked database does not exist on the primary', async () => {
    const app = await startNode(cleanups, 'primary', FakeBackend.primary({ other: 9n }));
    const r = await send(app.url, '/w', { method: 'POST', body: 'x' });
    expect(r.status).toBe(200);
    expect(setCookies(r.headers)).toEqual([]);
  });

  it('holds a read with a newer __txid cookie until the replica catches up, event-driven', async () => {
    const { primary, replica } = await startCluster(cleanups, { replicaTXID: 5n });
    const events: string[] = [];
    replica.app.events.on('request', () => events.push('app received'));
    const waitStarted = replica.backend.nextTXIDWait();
    const { req, response } = open(replica.url, '/profile', { headers: { cookie: 'theme=dark; __txid=0000000000000007' } });
    req.end();
    const got = response.then((res) => {
      events.push('response');
      return res;
    });
    expect(await within(waitStarted, 10_000, 'the proxy to wait')).toEqual({ db: 'db', target: 7n });
    // Still behind at TXID 6: keeps waiting.
    replica.backend.setTXID('db', 6n);
    events.push('advanced to 6');
    await new Promise((r) => setImmediate(r));
    expect(replica.backend.pendingTXIDWaits).toBe(1);
    replica.backend.setTXID('db', 7n);
    events.push('advanced to 7');
    const res = await within(got, 10_000, 'the response');
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(await bodyOf(res))).toMatchObject({ app: 'replica', url: '/profile' });
    expect(events).toEqual(['advanced to 6', 'advanced to 7', 'app received', 'response']);
    expect(replica.backend.txidWaits).toEqual([{ db: 'db', target: 7n }]);
    expect(replica.backend.pendingTXIDWaits).toBe(0);
    expect(primary.app.seen).toHaveLength(0);
  });

  it('answers 504 "Proxy timeout" when the replica does not catch up in time', async () => {
    const { replica } = await startCluster(cleanups, { replicaTXID: 5n, options: { txidWaitTimeoutMs: 200 } });
    const r = await send(replica.url, '/profile', { headers: { cookie: '__txid=0000000000000009' } });
    expect(r.status).toBe(504);
    expect(r.body).toBe('Proxy timeout\n');
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(replica.app.seen).toHaveLength(0);
    expect(replica.backend.pendingTXIDWaits).toBe(0);
  });

  it('does not wait for a cookie at or below the local TXID, nor for a missing database, and ignores malformed cookies', async () => {
    const { replica } = await startCluster(cleanups, { replicaTXID: 7n });
    expect((await send(replica.url, '/a', { headers: { cookie: '__txid=0000000000000007' } })).status).toBe(200);
    expect(replica.backend.txidWaits).toHaveLength(0);
    // Uppercase hex is a valid TXID (0xAB > 7): that one waits.
    const waiting = replica.backend.nextTXIDWait();
    const b = send(replica.url, '/b', { headers: { cookie: '__txid=00000000000000AB' } });
    expect(await within(waiting, 10_000, 'the wait')).toEqual({ db: 'db', target: 0xabn });
    replica.backend.setTXID('db', 0xabn);
    expect((await b).status).toBe(200);
    const malformed = await send(replica.url, '/c', { headers: { cookie: '__txid=123; x=1' } });
    expect(malformed.status).toBe(200);
    const rec = await replica.log.waitFor('malformed __txid');
    expect(rec.level).toBe('debug');
    expect(rec.fields['value']).toBe('123');

    const noDB = await startNode(cleanups, 'fresh', FakeBackend.replica(replica.url, {}));
    expect((await send(noDB.url, '/d', { headers: { cookie: '__txid=00000000000000ff' } })).status).toBe(200);
    expect(noDB.backend.txidWaits).toHaveLength(0);
  });

  it('serves /litefs/health: 200 OK, 503 beyond proxy.max-lag on a replica, always OK on the primary', async () => {
    const { primary, replica } = await startCluster(cleanups, { config: { maxLagMs: 10_000 } });
    let r = await send(replica.url, '/litefs/health');
    expect([r.status, r.body]).toEqual([200, 'OK\n']);
    replica.backend.setLag(10_000);
    expect((await send(replica.url, '/litefs/health')).status).toBe(200);
    replica.backend.setLag(10_001);
    r = await send(replica.url, '/litefs/health');
    expect([r.status, r.body]).toEqual([503, 'Replication lag exceeded\n']);
    r = await send(primary.url, '/litefs/health');
    expect([r.status, r.body]).toEqual([200, 'OK\n']);
    expect(replica.app.seen).toHaveLength(0);
    expect(primary.app.seen).toHaveLength(0);
  });

  it('sends passthrough paths to the local app with no cookie logic; patterns are anchored and * is the only wildcard', async () => {
    const config = { passthrough: ['/static/*', '/exact', '/v1.0/*/raw'] };
    const { primary, replica } = await startCluster(cleanups, { config, replicaTXID: 1n });
    // A write on a passthrough path stays on the replica.
    expect((await send(replica.url, '/static/css/site.css', { method: 'POST', body: 'x' })).headers['x-app']).toBe('replica');
    // A read with a newer cookie does not wait.
    expect((await send(replica.url, '/static/a.js', { headers: { cookie: '__txid=00000000000000ff' } })).headers['x-app']).toBe('replica');
    expect(replica.backend.txidWaits).toHaveLength(0);
    expect((await send(replica.url, '/v1.0/x/y/raw', { method: 'DELETE' })).headers['x-app']).toBe('replica');
    // Not matches: anchored at the end, '.' is literal.
    expect((await send(replica.url, '/exact/more', { method: 'POST' })).headers['x-app']).toBe('primary');
    expect((await send(replica.url, '/v1x0/x/raw', { method: 'POST' })).headers['x-app']).toBe('primary');
    // On the primary, a passthrough write gets no cookie.
    const onPrimary = await send(primary.url, '/static/upload', { method: 'POST', body: 'x' });
    expect(onPrimary.headers['x-app']).toBe('primary');
    expect(setCookies(onPrimary.headers)).toEqual([]);
  });

  it('forwards GETs on always-forward paths to the primary, which sets the cookie', async () => {
    const { primary, replica } = await startCluster(cleanups, {
      config: { alwaysForward: ['/login', '/oauth/*/callback'] },
      options: { now: () => FIXED_NOW },
    });
    const r = await send(replica.url, '/login?next=/');
    expect(r.headers['x-app']).toBe('primary');
    expect(setCookies(r.headers)).toEqual(['__txid=0000000000000005; Path=/; HttpOnly; Expires=Tue, 01 Jan 2030 00:05:00 GMT']);
    expect((await send(replica.url, '/oauth/github/callback', { method: 'HEAD' })).headers['x-app']).toBe('primary');
    expect((await send(replica.url, '/login/help')).headers['x-app']).toBe('replica');
    expect(primary.app.seen.map((s) => [s.method, s.url])).toEqual([
      ['GET', '/login?next=/'],
      ['HEAD', '/oauth/github/callback'],
    ]);
  });

  it('answers 503 when no primary is known within primary-redirect-timeout', async () => {
    const node = await startNode(cleanups, 'lonely', FakeBackend.replica(null, { db: 1n }), { config: { primaryRedirectTimeoutMs: 200 } });
    const r = await send(node.url, '/w', { method: 'POST', body: 'x' });
    expect([r.status, r.body]).toEqual([503, 'Proxy error: no primary available\n']);
    expect(node.app.seen).toHaveLength(0);
    expect(node.backend.primaryWaits).toBe(1);
    expect(node.backend.pendingPrimaryWaits).toBe(0);
    // Reads do not need a primary.
    expect((await send(node.url, '/r')).status).toBe(200);
  });

  it('holds a write until a primary becomes known, then forwards it', async () => {
    const primary = await startNode(cleanups, 'primary', FakeBackend.primary({ db: 3n }));
    const replica = await startNode(cleanups, 'replica', FakeBackend.replica(null, { db: 3n }), {
      config: { primaryRedirectTimeoutMs: 60_000 },
    });
    const { req, response } = open(replica.url, '/w', { method: 'POST' });
    req.end('payload');
    await until(() => replica.backend.pendingPrimaryWaits === 1, 'the write to wait for a primary');
    expect(primary.app.seen).toHaveLength(0);
    replica.backend.setPrimaryURL(primary.url);
    const res = await within(response, 10_000, 'the forwarded response');
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(await bodyOf(res))).toMatchObject({ app: 'primary', body: 'payload' });
  });

  it('refuses to forward a request that another proxy already forwarded (loop protection)', async () => {
    const { primary, replica } = await startCluster(cleanups);
    const direct = await send(replica.url, '/w', { method: 'POST', headers: { 'litefs-proxy-hop': '1' }, body: 'x' });
    expect(direct.status).toBe(503);
    expect(direct.body).toContain('already forwarded');
    expect(direct.body).toContain(primary.url);
    expect(primary.app.seen).toHaveLength(0);

    // Two replicas that each believe the other is the primary.
    const a = await startNode(cleanups, 'a', FakeBackend.replica(null, { db: 1n }));
    const b = await startNode(cleanups, 'b', FakeBackend.replica(a.url, { db: 1n }));
    a.backend.setPrimaryURL(b.url);
    const looped = await send(a.url, '/w', { method: 'POST', body: 'x' });
    expect(looped.status).toBe(503);
    expect(looped.body).toContain('already forwarded');
    expect(a.app.seen).toHaveLength(0);
    expect(b.app.seen).toHaveLength(0);
    expect((await b.log.waitFor('refusing to forward it again')).level).toBe('warn');

    // On the primary, a forwarded GET is served as the write it was.
    const onPrimary = await send(primary.url, '/r', { headers: { 'litefs-proxy-hop': '1' } });
    expect(onPrimary.headers['x-app']).toBe('primary');
    expect(setCookies(onPrimary.headers)).toHaveLength(1);
  });

  it('strips hop-by-hop headers in both directions and keeps end-to-end ones', async () => {
    const hopApp: AppHandler = (req, res, app) => {
      void readBody(req).then((body) => {
        app.record(req, body);
        res.setHeader('connection', 'keep-alive, X-Resp-Hop');
        res.setHeader('x-resp-hop', 'secret');
        res.setHeader('keep-alive', 'timeout=99');
        res.setHeader('proxy-authenticate', 'Basic realm="x"');
        res.setHeader('trailer', 'X-Checksum');
        res.setHeader('x-resp-end', 'kept');
        res.end('ok');
      });
    };
    const { primary, replica } = await startCluster(cleanups, { primaryHandler: hopApp });
    const r = await send(replica.url, '/w', {
      method: 'POST',
      headers: {
        connection: 'keep-alive, X-Req-Hop',
        'x-req-hop': 'secret',
        'keep-alive': 'timeout=99',
        te: 'trailers',
        trailer: 'X-Checksum',
        'proxy-authorization': 'Basic Zm9v',
        'proxy-connection': 'keep-alive',
        'x-req-end': 'kept',
      },
      body: 'body',
    });
    expect(r.status).toBe(200);
    const seen = primary.app.seen[0]!.headers;
    expect(seen['x-req-end']).toBe('kept');
    for (const h of ['x-req-hop', 'te', 'trailer', 'proxy-authorization', 'proxy-connection']) expect(seen[h], h).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(String(seen['connection'] ?? '')).not.toMatch(/x-req-hop/i);
    expect(r.headers['x-resp-end']).toBe('kept');
    for (const h of ['x-resp-hop', 'proxy-authenticate', 'trailer']) expect(r.headers[h], h).toBeUndefined();
    expect(r.headers['keep-alive']).not.toBe('timeout=99');
    expect(String(r.headers['connection'] ?? '')).not.toMatch(/x-resp-hop/i);
  });
});
