import { describe, expect, it } from 'vitest';
import {
  CHUNK_TERMINATOR,
  ChunkEncoder,
  FrameReader,
  MAX_CHUNK_SIZE,
  chunkedSize,
  encodeChunks,
  encodeControlFrame,
  encodeLtxFrame,
  encodeLtxFrameHeader,
  isStreamError,
  type ControlFrame,
  type Frame,
  type StreamErrorCode,
} from '../../src/http/protocol/index.js';
import { prng, splitSource } from './prng.js';

/** Parses chunk framing independently of the reader under test. */
function dechunk(buf: Buffer): { data: Buffer; sizes: number[]; rest: Buffer } {
  const parts: Buffer[] = [];
  const sizes: number[] = [];
  let o = 0;
  for (;;) {
    const len = buf.readUInt16BE(o);
    o += 2;
    if (len === 0) break;
    sizes.push(len);
    parts.push(buf.subarray(o, o + len));
    o += len;
  }
  return { data: Buffer.concat(parts), sizes, rest: buf.subarray(o) };
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of gen) out.push(b);
  return out;
}

type Plain = ControlFrame | { type: 'ltx'; name: string; size: bigint; data: Buffer };

/** Reads every frame, materialising LTX bodies, until null. */
async function readAllFrames(reader: FrameReader): Promise<Plain[]> {
  const out: Plain[] = [];
  for (let i = 0; i < 10_000; i++) {
    const f: Frame | null = await reader.next();
    if (f === null) return out;
    if (f.type === 'ltx') out.push({ type: 'ltx', name: f.name, size: f.size, data: await f.body.readAll() });
    else out.push(f);
  }
  throw new Error('too many frames');
}

async function errorCode(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (err: unknown) => (isStreamError(err) ? err.code : `non-stream error: ${String(err)}`),
  );
}

async function encodeAll(frames: Plain[], batchBytes?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const f of frames) {
    if (f.type === 'ltx') parts.push(...(await collect(encodeLtxFrame(f.name, [f.data], { size: f.size, batchBytes }))));
    else parts.push(encodeControlFrame(f));
  }
  return Buffer.concat(parts);
}

describe('chunk encoding', () => {
  it('splits into maximal chunks and terminates with u16 0', () => {
    const rand = prng(1);
    for (const n of [0, 1, 65534, 65535, 65536, 200_000]) {
      const data = rand.bytes(n);
      const enc = encodeChunks(data);
      expect(enc.length).toBe(chunkedSize(n));
      const { data: back, sizes, rest } = dechunk(Buffer.concat([enc, CHUNK_TERMINATOR]));
      expect(back.equals(data)).toBe(true);
      expect(rest.length).toBe(0);
      expect(sizes.every((s) => s >= 1 && s <= MAX_CHUNK_SIZE)).toBe(true);
      expect(sizes.slice(0, -1).every((s) => s === MAX_CHUNK_SIZE)).toBe(true);
    }
  });

  it('batches small pieces into few outputs', () => {
    const rand = prng(2);
    const enc = new ChunkEncoder({ batchBytes: 100_000 });
    const pieces: Buffer[] = [];
    const outs: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = rand.bytes(1 + rand.int(300));
      pieces.push(p);
      outs.push(...enc.push(p));
    }
    outs.push(enc.end());
    const all = pieces.reduce((n, p) => n + p.length, 0);
    expect(enc.totalBytes).toBe(all);
    // ~450 KB in 100 KB batches: a handful of writes, not 3000.
    expect(outs.length).toBeLessThanOrEqual(Math.ceil(all / 100_000) + 1);
    const { data, sizes } = dechunk(Buffer.concat(outs));
    expect(data.equals(Buffer.concat(pieces))).toBe(true);
    expect(sizes.every((s) => s >= 1 && s <= MAX_CHUNK_SIZE)).toBe(true);
    expect(() => enc.push(Buffer.from('x'))).toThrow();
  });

  it('encodes an empty body as just the terminator', () => {
    const enc = new ChunkEncoder();
    expect(enc.push(Buffer.alloc(0))).toEqual([]);
    expect(enc.end().toString('hex')).toBe('0000');
  });
});

describe('frame encoding', () => {
  it('matches the LiteFS v0.5 byte layout', () => {
    expect(encodeControlFrame({ type: 'ready' }).toString('hex')).toBe('00000002');
    expect(encodeControlFrame({ type: 'end' }).toString('hex')).toBe('00000003');
    expect(encodeControlFrame({ type: 'dropdb', name: 'db' }).toString('hex')).toBe('00000004' + '00000002' + '6462');
    expect(encodeControlFrame({ type: 'handoff', leaseID: 'L1' }).toString('hex')).toBe('00000005' + '00000002' + '4c31');
    expect(encodeControlFrame({ type: 'hwm', name: 'db', txid: 0x0102n }).toString('hex')).toBe(
      '00000006' + '0000000000000102' + '00000002' + '6462',
    );
    expect(encodeControlFrame({ type: 'heartbeat', timestamp: 1700000000000n }).toString('hex')).toBe('00000007' + '0000018bcfe56800');
    expect(encodeControlFrame({ type: 'heartbeat', timestamp: -1n }).toString('hex')).toBe('00000007' + 'ffffffffffffffff');
    expect(encodeLtxFrameHeader('db').toString('hex')).toBe('00000001' + '0000000000000000' + '00000002' + '6462');
  });

  it('refuses invalid names and values when encoding', () => {
    expect(() => encodeControlFrame({ type: 'dropdb', name: 'a/b' })).toThrow(/contains '\/'/);
    expect(() => encodeControlFrame({ type: 'hwm', name: 'db', txid: -1n })).toThrow(/HWM TXID/);
    expect(() => encodeControlFrame({ type: 'heartbeat', timestamp: 1n << 63n })).toThrow(/timestamp/);
    expect(() => encodeControlFrame({ type: 'handoff', leaseID: 'x'.repeat(1025) })).toThrow(/lease ID/);
  });

  it('checks a declared LTX size against the body', async () => {
    expect(await errorCode(collect(encodeLtxFrame('db', [Buffer.alloc(10)], { size: 9n })))).toBe('ERR_STREAM_BODY_TOO_LARGE');
    expect(await errorCode(collect(encodeLtxFrame('db', [Buffer.alloc(10)], { size: 11n })))).toBe('ERR_STREAM_SIZE_MISMATCH');
    const ok = Buffer.concat(await collect(encodeLtxFrame('db', [Buffer.alloc(10, 7)], { size: 10n })));
    expect(ok.readBigUInt64BE(4)).toBe(10n);
  });
});

describe('FrameReader', () => {
  it('round-trips random frame sequences over randomly split sources', async () => {
    const rand = prng(99);
    for (let round = 0; round < 40; round++) {
      const frames: Plain[] = [];
      const n = 1 + rand.int(12);
      for (let i = 0; i < n; i++) {
        const name = `db-${rand.int(1000)}.sqlite`;
        switch (rand.int(7)) {
          case 0: {
            const data = rand.bytes(rand.int(3) === 0 ? rand.int(200_000) : rand.int(100));
            frames.push({ type: 'ltx', name, size: rand.int(2) === 0 ? 0n : BigInt(data.length), data });
            break;
          }
          case 1:
            frames.push({ type: 'ready' });
            break;
          case 2:
            frames.push({ type: 'end' });
            break;
          case 3:
            frames.push({ type: 'dropdb', name });
            break;
          case 4:
            frames.push({ type: 'handoff', leaseID: `lease-${rand.int(1e9)}` });
            break;
          case 5:
            frames.push({ type: 'hwm', name, txid: BigInt(rand.int(1e9)) * 1000n });
            break;
          default:
            frames.push({ type: 'heartbeat', timestamp: BigInt(rand.int(2e9)) * 1000n - 10n ** 12n });
        }
      }
      const wire = await encodeAll(frames, 1 + rand.int(300_000));
      const reader = new FrameReader(splitSource(wire, rand, rand.int(2) === 0 ? 16 : 70_000));
      expect(await readAllFrames(reader)).toEqual(frames);
      expect(reader.offset).toBe(wire.length);
    }
  });

  it('streams LTX bodies in pieces no larger than a chunk', async () => {
    const data = prng(5).bytes(300_000);
    const wire = Buffer.concat([...(await collect(encodeLtxFrame('big.db', [data]))), encodeControlFrame({ type: 'end' })]);
    const reader = new FrameReader([wire]);
    const f = await reader.next();
    if (f?.type !== 'ltx') throw new Error('expected LTX frame');
    expect(f.size).toBe(0n);
    const pieces: Buffer[] = [];
    for await (const p of f.body) pieces.push(p);
    expect(pieces.every((p) => p.length <= MAX_CHUNK_SIZE)).toBe(true);
    expect(Buffer.concat(pieces).equals(data)).toBe(true);
    expect(f.body.bytesRead).toBe(data.length);
    expect(await reader.next()).toEqual({ type: 'end' });
    expect(await reader.next()).toBeNull();
  });

  it('requires the body to be consumed, and supports drain after a partial read', async () => {
    const data = prng(6).bytes(150_000);
    const wire = await encodeAll([{ type: 'ltx', name: 'a.db', size: 0n, data }, { type: 'ready' }]);
    const reader = new FrameReader(splitSource(wire, prng(8), 5000));
    const f = await reader.next();
    if (f?.type !== 'ltx') throw new Error('expected LTX frame');
    expect(await errorCode(reader.next())).toBe('ERR_STREAM_BODY_PENDING');
    for await (const p of f.body) {
      expect(p.length).toBeGreaterThan(0);
      break;
    }
    const skipped = await f.body.drain();
    expect(f.body.bytesRead).toBe(data.length);
    expect(skipped).toBeLessThan(data.length);
    expect(await reader.next()).toEqual({ type: 'ready' });
  });

  it('aborting a body fails the reader and stops the source', async () => {
    let returned = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        yield Buffer.concat(await collect(encodeLtxFrame('a.db', [Buffer.alloc(100_000, 1)])));
      } finally {
        returned = true;
      }
    }
    const reader = new FrameReader(source());
    const f = await reader.next();
    if (f?.type !== 'ltx') throw new Error('expected LTX frame');
    await f.body.read();
    await f.body.abort(new Error('disk full'));
    expect(returned).toBe(true);
    expect(await errorCode(reader.next())).toBe('ERR_STREAM_ABORTED');
    expect(await errorCode(f.body.read())).toBe('ERR_STREAM_ABORTED');
  });

  it('reports truncation at every cut point, and clean EOF only at frame boundaries', async () => {
    const frames: Plain[] = [
      { type: 'ltx', name: 'x.db', size: 0n, data: Buffer.from('hello world') },
      { type: 'hwm', name: 'x.db', txid: 9n },
      { type: 'heartbeat', timestamp: 5n },
      { type: 'handoff', leaseID: 'abc' },
      { type: 'dropdb', name: 'y' },
      { type: 'ready' },
    ];
    const wire = await encodeAll(frames);
    const boundaries = new Set<number>([0]);
    let acc = 0;
    for (const f of frames) {
      acc += (await encodeAll([f])).length;
      boundaries.add(acc);
    }
    for (let cut = 0; cut < wire.length; cut++) {
      const result = await errorCode(readAllFrames(new FrameReader([wire.subarray(0, cut)])));
      expect(result, `cut ${cut}`).toBe(boundaries.has(cut) ? 'ok' : 'ERR_STREAM_TRUNCATED');
    }
  });

  it('treats a chunk stream without its terminator as truncated', async () => {
    const wire = Buffer.concat([encodeLtxFrameHeader('a.db'), encodeChunks(Buffer.alloc(10, 3))]);
    const reader = new FrameReader([wire]);
    const f = await reader.next();
    if (f?.type !== 'ltx') throw new Error('expected LTX frame');
    expect(await errorCode(f.body.readAll())).toBe('ERR_STREAM_TRUNCATED');
    expect(await errorCode(reader.next())).toBe('ERR_STREAM_TRUNCATED');
  });

  it('recognises error text written into the stream after frames', async () => {
    const wire = Buffer.concat([encodeControlFrame({ type: 'ready' }), Buffer.from('context canceled\n')]);
    const reader = new FrameReader([wire]);
    expect(await reader.next()).toEqual({ type: 'ready' });
    const err = await reader.next().catch((e: unknown) => e);
    expect(isStreamError(err, 'ERR_STREAM_SERVER_TEXT')).toBe(true);
    expect(String(err)).toContain('context canceled');
  });

  it.each<[string, Buffer, StreamErrorCode]>([
    ['unknown type', Buffer.from('0000000800', 'hex'), 'ERR_STREAM_UNKNOWN_FRAME'],
    ['type 0', Buffer.from('00000000', 'hex'), 'ERR_STREAM_UNKNOWN_FRAME'],
    ['oversized LTX name', Buffer.from('00000001' + '0000000000000000' + '00000100', 'hex'), 'ERR_STREAM_FIELD_TOO_LONG'],
    ['huge DROPDB name', Buffer.from('00000004' + 'ffffffff', 'hex'), 'ERR_STREAM_FIELD_TOO_LONG'],
    ['empty HWM name', Buffer.from('00000006' + '0000000000000001' + '00000000', 'hex'), 'ERR_STREAM_BAD_NAME'],
    ['slash in name', Buffer.from('00000004' + '00000003' + '612f62', 'hex'), 'ERR_STREAM_BAD_NAME'],
    ['huge lease ID', Buffer.from('00000005' + '7fffffff', 'hex'), 'ERR_STREAM_FIELD_TOO_LONG'],
    ['non-UTF-8 lease ID', Buffer.from('00000005' + '00000001' + 'ff', 'hex'), 'ERR_STREAM_BAD_VALUE'],
  ])('rejects %s', async (_label, wire, code) => {
    const reader = new FrameReader([wire]);
    expect(await errorCode(reader.next())).toBe(code);
    // The failure is sticky: the position in the stream is lost.
    expect(await errorCode(reader.next())).toBe(code);
  });

  it('enforces maxLtxBytes and declared sizes', async () => {
    const data = Buffer.alloc(70_000, 2);
    const big = await encodeAll([{ type: 'ltx', name: 'a', size: 0n, data }]);
    const r1 = new FrameReader([big], { maxLtxBytes: 65_536 });
    const f1 = await r1.next();
    if (f1?.type !== 'ltx') throw new Error('expected LTX frame');
    expect(await errorCode(f1.body.drain())).toBe('ERR_STREAM_BODY_TOO_LARGE');

    const lying = Buffer.from(big);
    lying.writeBigUInt64BE(69_999n, 4);
    const f2 = await new FrameReader([lying]).next();
    if (f2?.type !== 'ltx') throw new Error('expected LTX frame');
    expect(await errorCode(f2.body.drain())).toBe('ERR_STREAM_BODY_TOO_LARGE');

    const declaredHuge = Buffer.from(big);
    declaredHuge.writeBigUInt64BE(1n << 60n, 4);
    expect(await errorCode(new FrameReader([declaredHuge], { maxLtxBytes: 1 << 20 }).next())).toBe('ERR_STREAM_BODY_TOO_LARGE');

    lying.writeBigUInt64BE(70_001n, 4);
    const f3 = await new FrameReader([lying]).next();
    if (f3?.type !== 'ltx') throw new Error('expected LTX frame');
    expect(await errorCode(f3.body.drain())).toBe('ERR_STREAM_SIZE_MISMATCH');
  });

  it('wraps source failures and rejects non-byte sources', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield encodeControlFrame({ type: 'ready' });
      throw new Error('ECONNRESET');
    }
    const reader = new FrameReader(failing());
    expect(await reader.next()).toEqual({ type: 'ready' });
    const err = await reader.next().catch((e: unknown) => e);
    expect(isStreamError(err, 'ERR_STREAM_SOURCE')).toBe(true);
    expect((err as Error).cause).toBeInstanceOf(Error);

    expect(await errorCode(new FrameReader(['00000002']).next())).toBe('ERR_STREAM_BAD_SOURCE');
  });

  it('refuses a second iteration of the same body', async () => {
    const wire = await encodeAll([{ type: 'ltx', name: 'a', size: 0n, data: Buffer.from('x') }]);
    const f = await new FrameReader([wire]).next();
    if (f?.type !== 'ltx') throw new Error('expected LTX frame');
    f.body[Symbol.asyncIterator]();
    expect(() => f.body[Symbol.asyncIterator]()).toThrow(/iterated twice/);
  });

  it('never hangs or throws a non-stream error on random bytes', async () => {
    const rand = prng(4242);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const buf = rand.bytes(rand.int(120));
      // Make frame types and lengths plausible often enough to reach deep states.
      for (let o = 0; o + 4 <= buf.length; o += 4 + rand.int(12)) {
        if (rand.int(3) === 0) buf.writeUInt32BE(1 + rand.int(8), o);
      }
      const code = await errorCode(readAllFrames(new FrameReader(splitSource(buf, rand, 9))));
      expect(code.startsWith('non-stream'), code).toBe(false);
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
    }
    expect(outcomes.size).toBeGreaterThan(3);
  });

  it('never hangs or throws a non-stream error on mutated valid streams', async () => {
    const rand = prng(777);
    const base = await encodeAll([
      { type: 'ltx', name: 'm.db', size: 0n, data: rand.bytes(3000) },
      { type: 'hwm', name: 'm.db', txid: 3n },
      { type: 'ready' },
      { type: 'heartbeat', timestamp: 1n },
      { type: 'ltx', name: 'n.db', size: 20n, data: rand.bytes(20) },
      { type: 'end' },
    ]);
    let intact = 0;
    for (let i = 0; i < 1500; i++) {
      const buf = Buffer.from(base);
      const flips = 1 + rand.int(4);
      for (let k = 0; k < flips; k++) buf[rand.int(buf.length)] = rand.int(256);
      const code = await errorCode(readAllFrames(new FrameReader(splitSource(buf.subarray(0, buf.length - rand.int(3)), rand, 600))));
      expect(code.startsWith('non-stream'), code).toBe(false);
      if (code === 'ok') intact++;
    }
    // Flips inside LTX payload bytes still decode: the stream layer cannot see them.
    expect(intact).toBeGreaterThan(0);
  });
});

describe('FrameReader.close', () => {
  it('ends a next() that waits on a silent source', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* silent(): AsyncGenerator<Buffer> {
      yield encodeControlFrame({ type: 'ready' });
      await gate; // never sends anything else until the test ends
    }
    const reader = new FrameReader(silent());
    expect(await reader.next()).toEqual({ type: 'ready' });
    const pending = errorCode(reader.next());
    await reader.close();
    expect(await pending).toBe('ERR_STREAM_ABORTED');
    expect(await errorCode(reader.next())).toBe('ERR_STREAM_ABORTED');
    release();
  });
});
