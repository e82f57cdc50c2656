import http2 from 'node:http2';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HttpTLSConfig } from '../../src/config/index.js';
import { AuthError, ApiServer, NodeSecurity, explainConnectError, nodeAgent, type Route } from '../../src/http/index.js';
import { silentLogger } from '../../src/internal/index.js';
import { makeTestPKI, type CertPair, type TestPKI } from '../helpers/certs.js';

/*
 * The node API's access control on a real ApiServer over loopback, with
 * certificates made by openssl: the bearer token on every route and both
 * HTTP versions, mutual TLS, hostname checks, the wrong protocol on either
 * kind of port, limits for unauthenticated clients, and rotation.
 */

const TOKEN = 'test-token-0123456789';
let pki: TestPKI;
let dir: string;
const cleanups: (() => Promise<void>)[] = [];
let bodyReads = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'litefs-auth-'));
  pki = makeTestPKI(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const routes: Route[] = [
  { method: 'GET', path: '/info', handler: (_req, res) => void res.end('{"ok":true}\n') },
  {
    method: 'POST',
    path: '/import',
    handler: async (req, res) => {
      bodyReads++;
      for await (const _ of req as AsyncIterable<Buffer>) void _;
      res.end('imported\n');
    },
  },
  {
    // A response that outlives a reload: 10 chunks, 50 ms apart.
    method: 'GET',
    path: '/slow',
    handler: async (_req, res) => {
      for (let i = 0; i < 10; i++) {
        (res as import('node:http').ServerResponse).write(`chunk ${i}\n`);
        await new Promise((r) => setTimeout(r, 50));
      }
      res.end();
    },
  },
];

function tlsConfig(pair: CertPair | null, opts: { ca?: string; clientAuth?: boolean } = {}): HttpTLSConfig {
  return { cert: pair?.cert ?? '', key: pair?.key ?? '', ca: opts.ca ?? pki.ca, clientAuth: opts.clientAuth ?? false };
}

async function serve(security: NodeSecurity): Promise<{ api: ApiServer; port: number }> {
  const api = new ApiServer({ host: '127.0.0.1', port: 0, logger: silentLogger, nodeID: '00000000000000AB', routes, security });
  await api.listen();
  cleanups.push(() => api.close());
  return { api, port: api.address().port };
}

interface Answer {
  status: number;
  body: string;
  headers: Record<string, unknown>;
}

/** One request over HTTP/1.1 (undici) with `client`'s TLS settings and token. */
async function h1(url: string, client: NodeSecurity, pathname = '/info'): Promise<Answer> {
  const agent = nodeAgent(client);
  try {
    const r = await request(new URL(pathname, url), {
      dispatcher: agent,
      headers: client.headers(),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
  } finally {
    await agent.close();
  }
}

/** One request over HTTP/2. */
async function h2(url: string, client: NodeSecurity, pathname = '/info', session?: http2.ClientHttp2Session): Promise<Answer> {
  const s = session ?? http2.connect(url, url.startsWith('https:') ? client.clientOptions() : {});
  s.on('error', () => {});
  try {
    const req = s.request({ ':path': pathname, ...client.headers() });
    req.end();
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    let body = '';
    for await (const c of req as AsyncIterable<Buffer>) body += c.toString();
    return { status: Number(headers[':status']), body, headers };
  } finally {
    if (session === undefined) s.close();
  }
}

async function failure(p: Promise<unknown>, url: string): Promise<string> {
  try {
    await p;
  } catch (err) {
    return explainConnectError(err, url);
  }
  throw new Error('the request succeeded');
}

const client = (token: string, pair: CertPair | null, ca = pki.ca): Promise<NodeSecurity> =>
  NodeSecurity.load({ token, tls: { cert: pair?.cert ?? '', key: pair?.key ?? '', ca, clientAuth: false } });

describe('bearer token', () => {
  it('covers every route, unknown ones too, on HTTP/1.1 and HTTP/2, answering a one-line JSON reason', async () => {
    const { port } = await serve(await NodeSecurity.load({ token: TOKEN, tls: null }));
    const url = `http://127.0.0.1:${port}`;
    const cases: [string, string, number, string][] = [
      ['', '/info', 401, 'ERR_AUTH_TOKEN_MISSING'],
      ['not-the-token', '/info', 401, 'ERR_AUTH_TOKEN_WRONG'],
      [`${TOKEN}x`, '/info', 401, 'ERR_AUTH_TOKEN_WRONG'],
      ['', '/no-such-route', 401, 'ERR_AUTH_TOKEN_MISSING'],
      [TOKEN, '/info', 200, ''],
      [TOKEN, '/no-such-route', 404, ''],
    ];
    for (const send of [h1, h2]) {
      for (const [token, route, status, code] of cases) {
        const r = await send(url, await NodeSecurity.load({ token, tls: null }), route);
        expect(r.status, `${send.name} ${route} with ${JSON.stringify(token)}`).toBe(status);
        if (status !== 401) continue;
        expect(r.body.trim().split('\n')).toHaveLength(1);
        expect(JSON.parse(r.body)).toMatchObject({ code });
        expect(r.headers['www-authenticate']).toBe('Bearer realm="litefs"');
        expect(r.headers['litefs-id']).toBeUndefined();
      }
    }
    const raw = await rawHTTP(port, `GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${TOKEN}\r\n\r\n`);
    expect(raw).toMatch(/^HTTP\/1.1 401 .*ERR_AUTH_TOKEN_MALFORMED/s);
  });

  it('refuses an upload without reading its body, and cuts the connection off', async () => {
    const { port } = await serve(await NodeSecurity.load({ token: TOKEN, tls: null }));
    bodyReads = 0;
    // HTTP/1.1: announce 256 MiB and keep sending; the node answers, then closes.
    const sock = net.connect(port, '127.0.0.1');
    let answer = '';
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    sock.on('error', () => {});
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.write(`POST /import?name=x HTTP/1.1\r\nHost: x\r\nContent-Length: ${256 << 20}\r\n\r\n`);
    const chunk = Buffer.alloc(1 << 20);
    let sent = 0;
    const t0 = Date.now();
    for (let i = 0; i < 256 && !sock.destroyed && Date.now() - t0 < 10_000; i++) {
      if (!sock.write(chunk))
        await Promise.race([new Promise((r) => sock.once('drain', r)), closed, new Promise((r) => setTimeout(r, 500))]);
      sent += chunk.length;
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    expect(sock.destroyed || sock.readableEnded).toBe(true);
    expect(answer).toMatch(/^HTTP\/1.1 401 /);
    expect(answer).toContain('ERR_AUTH_TOKEN_MISSING');
    // Far less than announced got through before the node hung up.
    expect(sent).toBeLessThan(64 << 20);
    sock.destroy();

    // HTTP/2: the stream is refused and reset; the session stays usable.
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    cleanups.push(async () => void session.destroy());
    const req = session.request({ ':method': 'POST', ':path': '/import?name=x' });
    req.on('error', () => {});
    req.resume();
    req.write(Buffer.alloc(1 << 20));
    const status = await new Promise<number>((resolve) => req.once('response', (h) => resolve(Number(h[':status']))));
    expect(status).toBe(401);
    await new Promise<void>((resolve) => req.once('close', () => resolve()));
    expect(bodyReads).toBe(0);
    expect((await h2('', await NodeSecurity.load({ token: TOKEN, tls: null }), '/info', session)).status).toBe(200);
    // At most 16 streams at once per connection, and small header lists.
    expect(session.remoteSettings.maxConcurrentStreams).toBe(16);
    expect(session.remoteSettings.maxHeaderListSize).toBe(8192);
    const big = await rawHTTP(port, `GET /info HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1.1 431 /);
  });
});

describe('TLS and mutual TLS', () => {
  it('serves HTTP/2 and HTTP/1.1 over TLS to a client with the right certificate and token', async () => {
    const { port } = await serve(await NodeSecurity.load({ token: TOKEN, tls: tlsConfig(pki.node, { clientAuth: true }) }));
    const good = await client(TOKEN, pki.node);
    for (const host of ['127.0.0.1', 'localhost']) {
      const url = `https://${host}:${port}`;
      expect((await h1(url, good)).status).toBe(200);
      const r = await h2(url, good);
      expect(r.status).toBe(200);
    }
  });

  it('refuses clients without a certificate, with one from another CA, or an expired one, saying why', async () => {
    const { port } = await serve(await NodeSecurity.load({ token: TOKEN, tls: tlsConfig(pki.node, { clientAuth: true }) }));
    const url = `https://127.0.0.1:${port}`;
    const cases: [CertPair | null, RegExp][] = [
      [null, /a client certificate is required/],
      [pki.otherCA, /not signed by the CA this node trusts.*UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
      [pki.expired, /it has expired \(CERT_HAS_EXPIRED\)/],
    ];
    for (const send of [h1, h2]) {
      for (const [pair, reason] of cases) {
        const r = await send(url, await client(TOKEN, pair));
        expect(r.status, `${send.name} ${pair?.cert ?? 'no certificate'}`).toBe(401);
        expect(JSON.parse(r.body)).toMatchObject({ code: 'ERR_AUTH_CLIENT_CERT' });
        expect(JSON.parse(r.body).error).toMatch(reason);
      }
    }
  });

  it('checks the server: expired, another CA, another hostname', async () => {
    const expired = (await serve(await NodeSecurity.load({ token: TOKEN, tls: tlsConfig(pki.expired) }))).port;
    const other = (await serve(await NodeSecurity.load({ token: TOKEN, tls: tlsConfig(pki.otherCA) }))).port;
    const wrong = (await serve(await NodeSecurity.load({ token: TOKEN, tls: tlsConfig(pki.wrongHost) }))).port;
    const c = await client(TOKEN, pki.node);
    for (const send of [h1, h2]) {
      const at = (p: number): string => `https://127.0.0.1:${p}`;
      expect(await failure(send(at(expired), c), at(expired))).toMatch(/has expired \(CERT_HAS_EXPIRED\)/);
      expect(await failure(send(at(other), c), at(other))).toMatch(/not signed by a trusted CA/);
      expect(await failure(send(at(wrong), c), at(wrong))).toMatch(/is for another host \(it names DNS:wrong.example\)/);
    }
  });

  it('tells a cleartext client on the TLS port, and a TLS client on the cleartext port, what is wrong', async () => {
    const tlsPort = (await serve(await NodeSecurity.load({ token: TOKEN, tls: tlsConfig(pki.node) }))).port;
    const clearPort = (await serve(await NodeSecurity.load({ token: TOKEN, tls: null }))).port;
    const plain = await NodeSecurity.load({ token: TOKEN, tls: null });
    const r = await h1(`http://127.0.0.1:${tlsPort}`, plain);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toEqual({ error: "this node's API speaks TLS only: use an https:// URL", code: 'ERR_AUTH_TLS_REQUIRED' });
    const u = `http://127.0.0.1:${tlsPort}`;
    expect(await failure(h2(u, plain), u)).toMatch(/requires TLS; use an https:\/\/ URL/);
    const c = await client(TOKEN, pki.node);
    const v = `https://127.0.0.1:${clearPort}`;
    for (const send of [h1, h2])
      expect(await failure(send(v, c), v)).toMatch(/closed the connection during the TLS handshake: it serves cleartext/);
  });
});

describe('reload', () => {
  it('rotates certificate and token for new connections while an open response finishes', async () => {
    const certDir = await mkdtemp(path.join(dir, 'rot-'));
    const { copyFile } = await import('node:fs/promises');
    const cert = path.join(certDir, 'cert.pem');
    const key = path.join(certDir, 'key.pem');
    await copyFile(pki.node.cert, cert);
    await copyFile(pki.node.key, key);
    const settings = (token: string) => ({ token, tls: { cert, key, ca: pki.ca, clientAuth: true } });
    const security = await NodeSecurity.load(settings(TOKEN));
    const { port } = await serve(security);
    const url = `https://127.0.0.1:${port}`;
    const old = await client(TOKEN, pki.node);
    const slow = h2(url, old, '/slow');
    await new Promise((r) => setTimeout(r, 100));

    await copyFile(pki.rotated.cert, cert);
    await copyFile(pki.rotated.key, key);
    await security.reload(settings('rotated-token-987'));

    const done = await slow;
    expect(done.status).toBe(200);
    expect(done.body.split('\n').filter(Boolean)).toHaveLength(10);
    expect((await h1(url, old)).status).toBe(401);
    expect((await h1(url, await client('rotated-token-987', pki.rotated))).status).toBe(200);
    expect(await servedFingerprint(port)).toBe(
      new X509Certificate(await (await import('node:fs/promises')).readFile(pki.rotated.cert)).fingerprint256,
    );

    // A broken file or a switch that needs a restart keeps what works.
    await expect(security.reload({ token: 'x', tls: { cert, key: pki.node.key, ca: pki.ca, clientAuth: true } })).rejects.toMatchObject({
      code: 'ERR_AUTH_TLS_FILES',
      message: expect.stringContaining('http.tls.key'),
    });
    await expect(security.reload({ token: 'x', tls: null })).rejects.toBeInstanceOf(AuthError);
    expect((await h1(url, await client('rotated-token-987', pki.rotated))).status).toBe(200);
  });

  it('names the setting and the file when startup material is bad', async () => {
    await expect(
      NodeSecurity.load({ token: '', tls: tlsConfig({ cert: path.join(dir, 'missing.pem'), key: pki.node.key }) }),
    ).rejects.toThrow(/^http\.tls\.cert: cannot read .*missing\.pem/);
    await expect(NodeSecurity.load({ token: '', tls: tlsConfig({ cert: pki.node.cert, key: pki.rotated.key }) })).rejects.toThrow(
      /^http\.tls\.key: .* is not the private key of the certificate/,
    );
    await expect(NodeSecurity.load({ token: '', tls: tlsConfig(pki.node, { ca: pki.node.key }) })).rejects.toThrow(
      /^http\.tls\.ca: .* holds no PEM certificate/,
    );
  });
});

/** Sends raw bytes, returns everything the server answered until it closed (or 3 s). */
function rawHTTP(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(text));
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => {});
    s.on('close', () => resolve(out));
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, 3000).unref();
  });
}

/** SHA-256 fingerprint of the certificate a new TLS connection to `port` is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on('error', reject);
  });
}
