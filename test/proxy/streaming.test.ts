import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppHandler } from './apps.js';
import { bodyOf, open, send } from './client.js';
import { startCluster, type Cleanups } from './cluster.js';
import { within } from './util.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('proxy streaming (replica → primary → app)', () => {
  it('streams a chunked upload: the app sees the first chunk before the client has sent the second', async () => {
    const chunks: string[] = [];
    const uploadApp: AppHandler = (req, res, app) => {
      req.on('data', (d: Buffer) => {
        chunks.push(d.toString('utf8'));
        app.events.emit('chunk', d.toString('utf8'));
      });
      req.on('end', () => {
        app.record(req, chunks.join(''));
        res.end(`got ${chunks.join('').length} bytes, te=${req.headers['transfer-encoding'] ?? 'none'}`);
      });
    };
    const { primary, replica } = await startCluster(cleanups, { primaryHandler: uploadApp });
    const { req, response } = open(replica.url, '/upload', { method: 'POST', headers: { 'content-type': 'text/plain' } });
    const first = once(primary.app.events, 'chunk');
    req.write('first-chunk;');
    // Only sent once the app has the first one: a proxy that buffered the
    // whole body would never deliver it, and this wait would time out.
    expect(await within(first, 10_000, 'the first chunk at the app')).toEqual(['first-chunk;']);
    req.write('second-chunk;');
    req.end('last');
    const res = await within(response, 10_000, 'the response');
    expect(await bodyOf(res)).toBe('got 29 bytes, te=chunked');
    expect(chunks.join('')).toBe('first-chunk;second-chunk;last');
    expect(chunks[0]).toBe('first-chunk;');
  });

  it('streams the response: the client reads the first chunk before the app ends it (flush per chunk)', async () => {
    const events: string[] = [];
    let release: (() => void) | undefined;
    const released = new Promise<void>((r) => (release = r));
    const streamingApp: AppHandler = (req, res, app) => {
      app.record(req, '');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      events.push('app wrote one');
      void released.then(() => {
        events.push('app ends');
        res.end('data: two\n\n');
      });
    };
    const { replica } = await startCluster(cleanups, { primaryHandler: streamingApp });
    const { req, response } = open(replica.url, '/events', { method: 'POST' });
    req.end();
    const res = await within(response, 10_000, 'response headers');
    expect(res.headers['content-type']).toBe('text/event-stream');
    const firstChunk = await within(once(res, 'data'), 10_000, 'the first chunk');
    events.push('client read one');
    expect(String(firstChunk[0])).toBe('data: one\n\n');
    const rest = bodyOf(res);
    release?.();
    expect(await within(rest, 10_000, 'the end')).toBe('data: two\n\n');
    expect(events).toEqual(['app wrote one', 'client read one', 'app ends']);
  });

  it('shows response headers before any body arrives (long poll)', async () => {
    let release: (() => void) | undefined;
    const released = new Promise<void>((r) => (release = r));
    const app: AppHandler = (req, res) => {
      res.writeHead(202, { 'x-started': 'yes' });
      res.flushHeaders();
      void released.then(() => res.end('done'));
    };
    const { replica } = await startCluster(cleanups, { primaryHandler: app });
    const { req, response } = open(replica.url, '/poll', { method: 'POST' });
    req.end();
    const res = await within(response, 10_000, 'headers before the body');
    expect(res.statusCode).toBe(202);
    expect(res.headers['x-started']).toBe('yes');
    release?.();
    expect(await bodyOf(res)).toBe('done');
  });

  it('carries 8 MiB each way intact, through both proxies, with backpressure', async () => {
    const upload = randomBytes(8 * 1024 * 1024);
    const download = randomBytes(8 * 1024 * 1024);
    const bigApp: AppHandler = (req, res, app) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => {
        app.record(req, `${n}:${h.digest('hex')}`);
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        // Slices so the proxies see many chunks and full buffers.
        for (let o = 0; o < download.length; o += 256 * 1024) res.write(download.subarray(o, o + 256 * 1024));
        res.end();
      });
    };
    const { primary, replica } = await startCluster(cleanups, { primaryHandler: bigApp });
    const { req, response } = open(replica.url, '/blob', { method: 'PUT', headers: { 'content-length': String(upload.length) } });
    req.end(upload);
    const res = await within(response, 30_000, 'the response');
    const parts: Buffer[] = [];
    for await (const p of res) parts.push(p as Buffer);
    const got = Buffer.concat(parts);
    expect(got.length).toBe(download.length);
    expect(sha(got)).toBe(sha(download));
    expect(primary.app.seen[0]?.body).toBe(`${upload.length}:${sha(upload)}`);
    expect(primary.app.seen[0]?.headers['content-length']).toBe(String(upload.length));
  });

  it('answers Expect: 100-continue itself and streams the body on', async () => {
    const { primary, replica } = await startCluster(cleanups);
    const { req, response } = open(replica.url, '/upload', { method: 'POST', headers: { expect: '100-continue', 'content-length': '5' } });
    await within(once(req, 'continue'), 10_000, '100 Continue');
    req.end('hello');
    const res = await within(response, 10_000, 'the response');
    expect(JSON.parse(await bodyOf(res))).toMatchObject({ app: 'primary', body: 'hello' });
    expect(primary.app.seen[0]?.headers.expect).toBeUndefined();
  });

  it('relays an empty-bodied POST and a 204', async () => {
    const app: AppHandler = (req, res, a) => {
      a.record(req, '');
      res.writeHead(204);
      res.end();
    };
    const { primary, replica } = await startCluster(cleanups, { primaryHandler: app });
    const r = await send(replica.url, '/empty', { method: 'POST' });
    expect(r.status).toBe(204);
    expect(r.body).toBe('');
    expect(primary.app.seen).toHaveLength(1);
  });
});
