import { readFile } from 'node:fs/promises';
import { compressFrameSync, compressSync, decompressFrameSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { LtxError } from '../../src/ltx/errors.js';
import { compressBlock, decompressBlock } from '../../src/ltx/lz4block.js';
import { Lz4FrameReader, Lz4FrameWriter, headerChecksum } from '../../src/ltx/lz4frame.js';
import { ChunkReader } from '../../src/ltx/reader.js';
import { xxh32 } from '../../src/ltx/xxh32.js';
import {
  LOCAL_FIXTURES,
  bytesEqual,
  chunked,
  mixedPage,
  randInt,
  randomBytes,
  referenceLz4Block,
  referenceLz4Frame,
  rng,
} from './helpers.js';

/** The input every lz4cli-*.lz4 fixture compresses (see fixtures/README.md). */
function lz4CliInput(): Uint8Array {
  const rand = rng(42);
  const r40 = new Uint8Array(40000);
  for (let i = 0; i < r40.length; i++) r40[i] = (rand() * 256) | 0;
  const out = new Uint8Array(150000);
  for (let i = 0; i < 120000; i++) out[i] = r40[i % 40000]!;
  for (let i = 120000; i < 150000; i++) out[i] = ((i & 0x3f) ^ (i >>> 10)) & 0xff;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function writeFrame(data: Uint8Array, pieces: number[] = [data.length]): Uint8Array {
  const out: Uint8Array[] = [];
  const w = new Lz4FrameWriter((c) => out.push(c.slice()));
  let i = 0;
  for (const n of pieces) {
    w.write(data.subarray(i, i + n));
    i += n;
  }
  w.write(data.subarray(i));
  w.close();
  return concat(out);
}

/** Reads one frame through our reader; returns the content and whatever follows the frame. */
async function readFrame(bytes: Uint8Array, maxChunk = 1 << 30, seed = 1): Promise<{ content: Uint8Array; rest: Uint8Array }> {
  const src = chunked(bytes, rng(seed), maxChunk);
  const raw = new ChunkReader(async () => {
    const r = await src.next();
    return r.done === true ? null : r.value;
  }, 'test stream');
  const fr = new Lz4FrameReader(raw);
  await fr.readHeader();
  const parts: Uint8Array[] = [];
  for (let v = await fr.body.readSome(5000); v !== null; v = await fr.body.readSome(5000)) parts.push(v.slice());
  await fr.expectEnd();
  const rest: Uint8Array[] = [];
  for (let v = await raw.readSome(1 << 20); v !== null; v = await raw.readSome(1 << 20)) rest.push(v.slice());
  return { content: concat(parts), rest: concat(rest) };
}

async function rejectsWith(bytes: Uint8Array, code: string, pattern?: RegExp): Promise<LtxError> {
  let caught: unknown;
  try {
    await readFrame(bytes);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LtxError);
  expect((caught as LtxError).code).toBe(code);
  if (pattern !== undefined) expect((caught as LtxError).message).toMatch(pattern);
  return caught as LtxError;
}

/** Builds a frame by hand so every descriptor field can be chosen. */
function handFrame(opts: {
  flg?: number;
  bd?: number;
  hc?: number;
  blocks: Array<{ data: Uint8Array; stored?: boolean; size?: number; sum?: number }>;
  contentSum?: number;
  contentSize?: bigint;
}): Uint8Array {
  const flg = opts.flg ?? 0x64;
  const bd = opts.bd ?? 0x40;
  const desc = [flg, bd];
  if (opts.contentSize !== undefined) {
    const cs = Buffer.alloc(8);
    cs.writeBigUInt64LE(opts.contentSize);
    desc.push(...cs);
  }
  const parts: Uint8Array[] = [new Uint8Array([0x04, 0x22, 0x4d, 0x18, ...desc, opts.hc ?? headerChecksum(new Uint8Array(desc))])];
  const content: Uint8Array[] = [];
  for (const b of opts.blocks) {
    const payload = b.stored === true ? b.data : compressSync(Buffer.from(b.data)).subarray(4);
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32LE(b.size ?? (payload.length | (b.stored === true ? 0x80000000 : 0)) >>> 0);
    parts.push(hdr, payload);
    if ((flg & 0x10) !== 0) {
      const s = Buffer.alloc(4);
      s.writeUInt32LE(b.sum ?? xxh32(payload));
      parts.push(s);
    }
    content.push(b.data);
  }
  parts.push(new Uint8Array(4));
  if ((flg & 0x04) !== 0) {
    const s = Buffer.alloc(4);
    s.writeUInt32LE(opts.contentSum ?? xxh32(concat(content)));
    parts.push(s);
  }
  return concat(parts);
}

describe('LZ4 frame writer', () => {
  it('writes the same frame header as Go and the reference lz4 CLI: 04 22 4D 18 64 40 A7', async () => {
    const frame = writeFrame(new Uint8Array(10));
    const hc = (xxh32(new Uint8Array([0x64, 0x40])) >>> 8) & 0xff;
    expect(hc).toBe(0xa7);
    expect(Array.from(frame.subarray(0, 7))).toEqual([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, hc]);
    // The reference CLI (lz4 -B4) wrote the same 7 bytes into this fixture.
    const cli = await readFile(LOCAL_FIXTURES + 'go-fixture-lz4cli.ltx');
    expect(Array.from(cli.subarray(100, 107))).toEqual(Array.from(frame.subarray(0, 7)));
  });

  it('round-trips through an independent block decoder, lz4_flex and our reader', async () => {
    const rand = rng(17);
    for (const size of [0, 1, 100, 65535, 65536, 65537, 200_000]) {
      const data = new Uint8Array(size);
      for (let o = 0; o < size; o += 4096) data.set(mixedPage(rand, 4096).subarray(0, Math.min(4096, size - o)), o);
      const pieces = Array.from({ length: 5 }, () => randInt(rand, 0, Math.max(1, size / 5)));
      const frame = writeFrame(data, pieces);
      const ref = referenceLz4Frame(frame);
      expect(ref.length).toBe(frame.length);
      expect(bytesEqual(ref.content, data)).toBe('equal');
      expect(bytesEqual(decompressFrameSync(Buffer.from(frame)), data)).toBe('equal');
      const ours = await readFrame(frame, 700, size);
      expect(bytesEqual(ours.content, data)).toBe('equal');
      expect(ours.rest.length).toBe(0);
    }
  });

  it('writes the same bytes when blocks are compressed concurrently on the thread pool', async () => {
    const rand = rng(19);
    const data = concat(Array.from({ length: 100 }, () => mixedPage(rand, 4096)));
    const sync = writeFrame(data);
    const out: Uint8Array[] = [];
    const w = new Lz4FrameWriter((c) => out.push(c.slice()), { concurrency: 3 });
    let maxSeen = 0;
    for (let i = 0; i < data.length; i += 5000) {
      w.write(data.subarray(i, i + 5000));
      maxSeen = Math.max(maxSeen, w.inFlight);
      await w.flush(3);
      expect(w.inFlight).toBeLessThanOrEqual(3);
    }
    w.close();
    expect(w.inFlight).toBeGreaterThan(0); // the tail is still being compressed
    await w.flush(0);
    expect(maxSeen).toBe(4);
    expect(bytesEqual(concat(out), sync)).toBe('equal');
    expect(bytesEqual(referenceLz4Frame(concat(out)).content, data)).toBe('equal');
  });

  it('stores incompressible blocks uncompressed (high bit of the block size)', () => {
    const data = randomBytes(rng(4), 70000);
    const frame = writeFrame(data);
    const first = new DataView(frame.buffer, frame.byteOffset).getUint32(7, true);
    expect(first >>> 31).toBe(1);
    expect(first & 0x7fffffff).toBe(65536);
    expect(frame.length).toBe(7 + 4 + 65536 + 4 + (70000 - 65536) + 4 + 4);
    expect(bytesEqual(referenceLz4Frame(frame).content, data)).toBe('equal');
  });

  it('refuses writes after close', () => {
    const w = new Lz4FrameWriter(() => {});
    w.close();
    expect(() => w.write(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'ERR_LTX_STATE' }));
  });
});

describe('LZ4 frame reader', () => {
  it('decodes frames written by the reference lz4 CLI (checksums, content size, linked and large blocks)', async () => {
    const want = lz4CliInput();
    for (const name of ['lz4cli-b64k-blockcrc-size.lz4', 'lz4cli-b64k-linked.lz4', 'lz4cli-b256k.lz4', 'lz4cli-b256k-nocrc.lz4']) {
      const bytes = new Uint8Array(await readFile(LOCAL_FIXTURES + name));
      const { content, rest } = await readFrame(bytes, 3000);
      expect(content.length, name).toBe(want.length);
      expect(bytesEqual(content, want), name).toBe('equal');
      expect(rest.length).toBe(0);
    }
  });

  it('needs the previous output to decode linked blocks (the fixture really is linked)', async () => {
    const bytes = new Uint8Array(await readFile(LOCAL_FIXTURES + 'lz4cli-b64k-linked.lz4'));
    expect(bytes[4]! & 0x20).toBe(0);
    // Decoding each block on its own fails: later blocks reference earlier output.
    expect(() => referenceLz4Frame(bytes)).toThrow(/offset/);
  });

  it('decodes lz4_flex frames with every checksum option', async () => {
    const rand = rng(23);
    for (const contentChecksum of [false, true]) {
      for (const blockChecksums of [false, true]) {
        const data = Buffer.from(concat(Array.from({ length: 40 }, () => mixedPage(rand, 4096))));
        const frame = new Uint8Array(compressFrameSync(data, { contentChecksum, blockChecksums }));
        const { content } = await readFrame(frame, 999);
        expect(bytesEqual(content, data)).toBe('equal');
      }
    }
  });

  it('accepts 4 MiB blocks, block checksums over stored or decoded bytes, and skippable frames', async () => {
    const rand = rng(31);
    const big = concat(Array.from({ length: 20 }, () => mixedPage(rand, 65536)));
    const f = handFrame({ bd: 0x70, blocks: [{ data: big }] });
    expect(bytesEqual((await readFrame(f)).content, big)).toBe('equal');
    const small = mixedPage(rand, 3000);
    const compressed = compressSync(Buffer.from(small)).subarray(4);
    // pierrec/lz4 hashed decoded bytes; the spec hashes stored bytes. Both verify.
    const specSum = handFrame({ flg: 0x74, blocks: [{ data: small, sum: xxh32(compressed) }] });
    const goSum = handFrame({ flg: 0x74, blocks: [{ data: small, sum: xxh32(small) }] });
    expect(bytesEqual((await readFrame(specSum)).content, small)).toBe('equal');
    expect(bytesEqual((await readFrame(goSum)).content, small)).toBe('equal');
    const skip = concat([new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]), f]);
    expect(bytesEqual((await readFrame(skip)).content, big)).toBe('equal');
    // Content size is informational, as in Go.
    const sized = handFrame({ flg: 0x6c, contentSize: 12345n, blocks: [{ data: small }] });
    expect(bytesEqual((await readFrame(sized)).content, small)).toBe('equal');
  });

  it('leaves bytes after the frame for the caller (the LTX trailer)', async () => {
    const frame = writeFrame(new Uint8Array(100).fill(3));
    const { rest } = await readFrame(concat([frame, new Uint8Array([1, 2, 3])]), 5);
    expect(Array.from(rest)).toEqual([1, 2, 3]);
  });

  it('rejects bad magic, version, dictionary ID, header checksum and block size code', async () => {
    const data = new Uint8Array(1000).fill(1);
    const good = handFrame({ blocks: [{ data }] });
    const badMagic = good.slice();
    badMagic[0] = 0x05;
    await rejectsWith(badMagic, 'ERR_LTX_LZ4', /magic/);
    await rejectsWith(handFrame({ flg: 0x24, blocks: [{ data }] }), 'ERR_LTX_LZ4', /version 0/);
    await rejectsWith(handFrame({ flg: 0xa4, blocks: [{ data }] }), 'ERR_LTX_LZ4', /version 2/);
    await rejectsWith(handFrame({ flg: 0x65, blocks: [{ data }] }), 'ERR_LTX_LZ4', /dictionary/);
    await rejectsWith(handFrame({ hc: 0xa6, blocks: [{ data }] }), 'ERR_LTX_LZ4', /header checksum/);
    for (const bd of [0x00, 0x10, 0x20, 0x30]) {
      await rejectsWith(handFrame({ bd, blocks: [{ data }] }), 'ERR_LTX_LZ4', /block size code/);
    }
  });

  it('rejects oversized blocks, bad checksums and corrupt block data', async () => {
    const rand = rng(2);
    const data = mixedPage(rand, 4096);
    const stored = randomBytes(rand, 100);
    await rejectsWith(handFrame({ blocks: [{ data: new Uint8Array(65537), stored: true }] }), 'ERR_LTX_LZ4', /exceeds/);
    await rejectsWith(
      handFrame({ blocks: [{ data: stored, stored: true, size: (0x80000000 | 0x7fffffff) >>> 0 }] }),
      'ERR_LTX_LZ4',
      /exceeds/,
    );
    await rejectsWith(handFrame({ blocks: [{ data }], contentSum: 0x12345678 }), 'ERR_LTX_LZ4', /content checksum/);
    await rejectsWith(handFrame({ flg: 0x74, blocks: [{ data, sum: 1 }] }), 'ERR_LTX_LZ4', /block checksum/);
    // A block that expands past the 64 KiB maximum is refused by the block decoder.
    const tooBig = compressSync(Buffer.alloc(70000)).subarray(4);
    const f = handFrame({ blocks: [{ data: stored, stored: true }] });
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32LE(tooBig.length);
    await rejectsWith(concat([f.subarray(0, 7), hdr, tooBig, new Uint8Array(8)]), 'ERR_LTX_LZ4');
  });

  it('expectEnd refuses a frame that still holds data', async () => {
    const frame = writeFrame(new Uint8Array(100).fill(5));
    let given = false;
    const raw = new ChunkReader(async () => (given ? null : ((given = true), frame)), 'test');
    const fr = new Lz4FrameReader(raw);
    await fr.readHeader();
    expect(Array.from(await fr.body.read(10, 'x'))).toEqual(new Array(10).fill(5));
    await expect(fr.expectEnd()).rejects.toMatchObject({ code: 'ERR_LTX_LZ4', message: expect.stringMatching(/end frame/) });
  });

  it('reports every truncation as ERR_LTX_TRUNCATED', async () => {
    const rand = rng(6);
    const frame = handFrame({ flg: 0x74, blocks: [{ data: mixedPage(rand, 2000) }, { data: randomBytes(rand, 50), stored: true }] });
    for (let n = 0; n < frame.length; n++) {
      await rejectsWith(frame.subarray(0, n), 'ERR_LTX_TRUNCATED');
    }
  });
});

describe('LZ4 block adapter (lz4-napi)', () => {
  it('round-trips and reports incompressible input as null', () => {
    const rand = rng(9);
    for (let t = 0; t < 30; t++) {
      const src = mixedPage(rand, randInt(rand, 1, 65536));
      const c = compressBlock(src);
      if (c === null) continue;
      expect(c.length).toBeLessThan(src.length);
      expect(bytesEqual(decompressBlock(c, 65536), src)).toBe('equal');
      expect(bytesEqual(referenceLz4Block(c, 65536), src)).toBe('equal');
    }
    expect(compressBlock(randomBytes(rand, 5000))).toBeNull();
    expect(compressBlock(new Uint8Array(0))).toBeNull();
  });

  it('never crashes or overruns on hostile blocks', () => {
    const rand = rng(1234);
    let accepted = 0;
    for (let t = 0; t < 3000; t++) {
      const src = randomBytes(rand, randInt(rand, 1, 300));
      if (t % 3 === 0) src[0] = 0xf0 | (src[0]! & 0x0f); // long literal runs
      let out: Uint8Array | null = null;
      try {
        out = decompressBlock(src, 65536);
      } catch (err) {
        expect(err).toBeInstanceOf(LtxError);
        expect((err as LtxError).code).toBe('ERR_LTX_LZ4');
      }
      if (out !== null) {
        accepted++;
        expect(out.length).toBeLessThanOrEqual(65536);
        expect(bytesEqual(out, referenceLz4Block(src, 1 << 20))).toBe('equal');
      }
    }
    expect(accepted).toBeLessThan(3000);
    expect(() => decompressBlock(new Uint8Array(0), 65536)).toThrow(expect.objectContaining({ code: 'ERR_LTX_LZ4' }));
    // A valid block that expands beyond the limit.
    const big = compressSync(Buffer.alloc(5000)).subarray(4);
    expect(() => decompressBlock(big, 4096)).toThrow(expect.objectContaining({ code: 'ERR_LTX_LZ4' }));
    expect(decompressBlock(big, 5000).length).toBe(5000);
  });
});
