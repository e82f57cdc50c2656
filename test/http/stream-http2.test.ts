import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FrameReader,
  encodeControlFrame,
  encodeLtxFrame,
  encodePosMap,
  isStreamError,
  readPosMap,
  type PosMap,
} from '../../src/http/protocol/index.js';
import { prng } from './prng.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** An h2c server on 127.0.0.1 whose /stream handler is `handler`. */
async function serve(handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => Promise<void>): Promise<string> {
  const server = http2.createServer((req, res) => {
    handler(req, res).catch((err: unknown) => res.stream.destroy(err instanceof Error ? err : new Error(String(err))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function connect(origin: string): http2.ClientHttp2Session {
  const session = http2.connect(origin);
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        session.close(() => resolve());
      }),
  );
  return session;
}

/** Writes respecting backpressure, as a real stream server must. */
async function write(res: http2.Http2ServerResponse, buf: Buffer): Promise<void> {
  if (!res.write(buf)) await new Promise<void>((resolve) => res.once('drain', resolve));
}

describe('stream protocol over HTTP/2 (h2c)', () => {
  it('carries a position map up and frames with a large LTX body down', async () => {
    const ltx = prng(11).bytes(3 * 1024 * 1024 + 17);
    let received: PosMap | undefined;
    const origin = await serve(async (req, res) => {
      received = await readPosMap(req.stream);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for await (const b of encodeLtxFrame('big.db', [ltx.subarray(0, 1_000_000), ltx.subarray(1_000_000)])) await write(res, b);
      await write(res, encodeControlFrame({ type: 'hwm', name: 'big.db', txid: 42n }));
      await write(res, encodeControlFrame({ type: 'ready' }));
      await write(res, encodeControlFrame({ type: 'heartbeat', timestamp: 1_700_000_000_000n }));
      await write(res, encodeControlFrame({ type: 'end' }));
      res.end();
    });
    const session = connect(origin);
    const posMap: PosMap = new Map([['big.db', { txid: 41n, postApplyChecksum: 0x8000000000001234n }]]);
    const stream = session.request({ ':method': 'POST', ':path': '/stream' });
    stream.end(encodePosMap(posMap));

    const reader = new FrameReader(stream);
    const f = await reader.next();
    if (f?.type !== 'ltx') throw new Error(`expected LTX frame, got ${JSON.stringify(f)}`);
    expect(f.name).toBe('big.db');
    const body = await f.body.readAll();
    expect(body.equals(ltx)).toBe(true);
    expect(await reader.next()).toEqual({ type: 'hwm', name: 'big.db', txid: 42n });
    expect(await reader.next()).toEqual({ type: 'ready' });
    expect(await reader.next()).toEqual({ type: 'heartbeat', timestamp: 1_700_000_000_000n });
    expect(await reader.next()).toEqual({ type: 'end' });
    expect(await reader.next()).toBeNull();
    expect(received).toEqual(posMap);
  });

  it('fails with ERR_STREAM_SERVER_TEXT when the server writes an error after 200', async () => {
    const origin = await serve(async (req, res) => {
      await readPosMap(req.stream);
      res.writeHead(200);
      await write(res, encodeControlFrame({ type: 'ready' }));
      // What Go's http.Error does once headers are out.
      res.end('stream error: database is locked\n');
    });
    const stream = connect(origin).request({ ':method': 'POST', ':path': '/stream' });
    stream.end(encodePosMap(new Map()));
    const reader = new FrameReader(stream);
    expect(await reader.next()).toEqual({ type: 'ready' });
    const err = await reader.next().catch((e: unknown) => e);
    expect(isStreamError(err, 'ERR_STREAM_SERVER_TEXT')).toBe(true);
    expect(String(err)).toContain('stream e');
  });

  it('closing the reader cancels the HTTP/2 stream', async () => {
    let serverSawClose: Promise<void> | undefined;
    const origin = await serve(async (req, res) => {
      await readPosMap(req.stream);
      res.writeHead(200);
      serverSawClose = new Promise<void>((resolve) => res.stream.once('close', () => resolve()));
      await write(res, encodeControlFrame({ type: 'ready' }));
      // Keep the stream open: the client must be the one to end it.
    });
    const stream = connect(origin).request({ ':method': 'POST', ':path': '/stream' });
    stream.end(encodePosMap(new Map()));
    const reader = new FrameReader(stream);
    expect(await reader.next()).toEqual({ type: 'ready' });
    const pending = reader.next().catch((e: unknown) => e);
    await reader.close(new Error('shutting down'));
    expect(isStreamError(await pending, 'ERR_STREAM_ABORTED')).toBe(true);
    expect(stream.destroyed).toBe(true);
    await serverSawClose;
  });
});
