import { createReadStream } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKSUM_FLAG, DatabaseChecksum, lockPgno } from '../../src/ltx/checksum.js';
import { LtxDecoder, readLtxHeader, verifyLtxFile, type DecoderOptions } from '../../src/ltx/decoder.js';
import { LtxEncoder, encodeLtxToBuffer, type LtxSink } from '../../src/ltx/encoder.js';
import { LtxError } from '../../src/ltx/errors.js';
import { writeLtxFile } from '../../src/ltx/file-sink.js';
import { unmarshalTrailer } from '../../src/ltx/header.js';
import type { LtxSource } from '../../src/ltx/reader.js';
import { newHeader, type Page } from '../../src/ltx/types.js';
import { xxh32 } from '../../src/ltx/xxh32.js';
import { GO_LTX, LOCAL_FIXTURES, bytesEqual, chunked, craftLtx, mixedPage, randInt, rng, withTmpDir } from './helpers.js';

async function decodeAll(src: LtxSource, opts: DecoderOptions = {}) {
  const dec = new LtxDecoder(src, opts);
  const header = await dec.decodeHeader();
  const pages: Page[] = [];
  for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) pages.push({ pgno: p.pgno, data: p.data.slice() });
  const trailer = await dec.close();
  return { header, pages, trailer, bytesRead: dec.bytesRead };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    return (err as LtxError).code;
  }
  return 'resolved';
}

function codeOfSync(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    return (err as LtxError).code;
  }
  return 'returned';
}

class Collector implements LtxSink {
  chunks: Uint8Array[] = [];
  write(c: Uint8Array): void {
    this.chunks.push(c);
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

const zero512 = new Uint8Array(512);
const HC = (xxh32(new Uint8Array([0x64, 0x40])) >>> 8) & 0xff;

describe('golden vectors', () => {
  it('minimal snapshot: 636 bytes, PostApply efb1f44fecd99000, FileChecksum b8dce58669778c30', async () => {
    const h = newHeader({ pageSize: 512, commit: 1, minTXID: 1n, maxTXID: 1n });
    const b = encodeLtxToBuffer(h, [{ pgno: 1, data: zero512 }], 0xefb1f44fecd99000n);
    expect(b.length).toBe(636);
    expect(unmarshalTrailer(b.subarray(620))).toEqual({
      postApplyChecksum: 0xefb1f44fecd99000n,
      fileChecksum: 0xb8dce58669778c30n,
    });
    const r = await decodeAll(b);
    expect(r.header).toEqual(h);
    expect(r.pages.map((p) => p.pgno)).toEqual([1]);
  });

  it('incremental on top: 1152 bytes, PostApply aad48cd000000000, FileChecksum f6b4a97ff6b797a3', async () => {
    const h = newHeader({
      pageSize: 512,
      commit: 2,
      minTXID: 2n,
      maxTXID: 2n,
      timestamp: 1700000000000n,
      preApplyChecksum: 0xefb1f44fecd99000n,
    });
    const pages = [
      { pgno: 1, data: new Uint8Array(512).fill(0xff) },
      { pgno: 2, data: zero512 },
    ];
    const db = new DatabaseChecksum(512);
    for (const p of pages) db.addPage(p.pgno, p.data);
    expect(db.value).toBe(0xaad48cd000000000n);
    const b = encodeLtxToBuffer(h, pages, db.value);
    expect(b.length).toBe(1152);
    expect(unmarshalTrailer(b.subarray(1136)).fileChecksum).toBe(0xf6b4a97ff6b797a3n);
    expect((await verifyLtxFile(b)).trailer.fileChecksum).toBe(0xf6b4a97ff6b797a3n);
  });
});

describe('the Go-written fixture', () => {
  const want = {
    flags: 0,
    pageSize: 4096,
    commit: 10,
    minTXID: 13n,
    maxTXID: 13n,
    timestamp: 0n,
    preApplyChecksum: 0x9c74a15b4e4f246cn,
    walOffset: 0n,
    walSize: 0n,
    walSalt1: 0,
    walSalt2: 0,
    nodeID: 0n,
  };

  it('decodes to the documented values and verifies', async () => {
    const r = await decodeAll(GO_LTX, { strict: true });
    expect(r.header).toEqual(want);
    expect(r.pages.map((p) => p.pgno)).toEqual([1, 7, 8]);
    expect(r.trailer).toEqual({ postApplyChecksum: 0xfe3831a381c602b9n, fileChecksum: 0x9496a29358326fb5n });
    expect(r.bytesRead).toBe(12420);
    const v = await verifyLtxFile(GO_LTX);
    expect(v).toMatchObject({ pageCount: 3, pgnos: [1, 7, 8], size: 12420 });
    expect(await readLtxHeader(GO_LTX)).toEqual(want);
  });

  it('re-encodes byte-identically', async () => {
    const raw = new Uint8Array(await readFile(GO_LTX));
    const r = await decodeAll(GO_LTX);
    expect(bytesEqual(encodeLtxToBuffer(r.header, r.pages, r.trailer.postApplyChecksum), raw)).toBe('equal');
    const sink = new Collector();
    const enc = new LtxEncoder(sink, { bufferSize: 1000 });
    await enc.encodeHeader(r.header);
    for (const p of r.pages) await enc.encodePage(p.pgno, p.data);
    expect(await enc.close(r.trailer.postApplyChecksum)).toEqual(r.trailer);
    expect(bytesEqual(sink.bytes(), raw)).toBe('equal');
    expect(enc.bytesWritten).toBe(raw.length);
    expect(enc.pageCount).toBe(3);
  });

  it('decodes identically from a path, FileHandle, buffer, Readable and odd chunkings', async () => {
    const raw = new Uint8Array(await readFile(GO_LTX));
    const ref = await decodeAll(GO_LTX);
    const fh = await open(GO_LTX, 'r');
    try {
      const sources: LtxSource[] = [
        fh,
        raw,
        createReadStream(GO_LTX, { highWaterMark: 333 }),
        chunked(raw, rng(1), 1),
        chunked(raw, rng(2), 7),
        chunked(raw, rng(3), 5000),
      ];
      for (const s of sources) {
        const r = await decodeAll(s);
        expect(r.header).toEqual(ref.header);
        expect(r.trailer).toEqual(ref.trailer);
        expect(r.pages.length).toBe(3);
        r.pages.forEach((p, i) => expect(bytesEqual(p.data, ref.pages[i]!.data)).toBe('equal'));
      }
      // The decoder leaves a caller's FileHandle open.
      expect((await fh.stat()).size).toBe(12420);
    } finally {
      await fh.close();
    }
  });

  it('decodes the same pages from LZ4 frames made by the reference lz4 CLI', async () => {
    const ref = await decodeAll(GO_LTX);
    for (const name of ['go-fixture-lz4cli.ltx', 'go-fixture-lz4cli-blockcrc.ltx']) {
      const r = await decodeAll(join(LOCAL_FIXTURES, name), { strict: true });
      expect(r.header).toEqual({ ...ref.header, flags: 1 });
      expect(r.trailer.postApplyChecksum).toBe(ref.trailer.postApplyChecksum);
      expect(r.trailer.fileChecksum).toBe(0xc02dd7192838ae94n);
      r.pages.forEach((p, i) => expect(bytesEqual(p.data, ref.pages[i]!.data)).toBe('equal'));
      // Our encoder's frame differs in bytes but not in content or file checksum.
      const ours = encodeLtxToBuffer(r.header, r.pages, r.trailer.postApplyChecksum);
      expect(unmarshalTrailer(ours.subarray(ours.length - 16)).fileChecksum).toBe(0xc02dd7192838ae94n);
    }
  });
});

describe('round trips (seeded property test)', () => {
  const sizes = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

  it('encodes and decodes random files of every page size, kind and compression', async () => {
    const rand = rng(2024);
    for (let iter = 0; iter < 48; iter++) {
      const pageSize = sizes[iter % sizes.length]!;
      const compress = iter % 2 === 1;
      const snapshot = iter % 3 === 0;
      const maxPages = Math.max(2, Math.floor(600_000 / pageSize));
      const commit = randInt(rand, 1, maxPages);
      let pgnos: number[];
      if (snapshot) pgnos = Array.from({ length: commit }, (_, i) => i + 1);
      else {
        const set = new Set<number>();
        const n = randInt(rand, 0, Math.min(commit, 30));
        while (set.size < n) set.add(randInt(rand, 1, commit));
        pgnos = [...set].sort((a, b) => a - b);
      }
      const pages = pgnos.map((pgno) => ({ pgno, data: mixedPage(rand, pageSize) }));
      const minTXID = snapshot ? 1n : BigInt(randInt(rand, 2, 1000));
      const header = newHeader({
        flags: compress ? 1 : 0,
        pageSize,
        commit,
        minTXID,
        maxTXID: minTXID + BigInt(randInt(rand, 0, 5)),
        timestamp: BigInt(randInt(rand, 0, 2 ** 40)),
        preApplyChecksum: snapshot ? 0n : CHECKSUM_FLAG | BigInt(randInt(rand, 1, 2 ** 30)),
        nodeID: BigInt(randInt(rand, 0, 2 ** 31)),
      });
      let post = CHECKSUM_FLAG | BigInt(randInt(rand, 1, 2 ** 30));
      if (snapshot) {
        const d = new DatabaseChecksum(pageSize);
        for (const p of pages) d.addPage(p.pgno, p.data);
        post = d.value;
      }
      const sink = new Collector();
      const enc = new LtxEncoder(sink, { bufferSize: randInt(rand, 64, 300_000) });
      await enc.encodeHeader(header);
      for (const p of pages) await enc.encodePage(p.pgno, p.data);
      const trailer = await enc.close(post);
      const bytes = sink.bytes();
      expect(bytesEqual(encodeLtxToBuffer(header, pages, post), bytes)).toBe('equal');
      if (compress) {
        // FLG 0x64, BD 0x40 as Go writes them; HC computed here, not copied.
        expect(Array.from(bytes.subarray(100, 107))).toEqual([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, HC]);
      } else {
        expect(bytes.length).toBe(100 + pages.length * (4 + pageSize) + 4 + 16);
      }
      const src = iter % 4 === 0 ? chunked(bytes, rand, 9000) : bytes;
      const r = await decodeAll(src, { strict: true });
      expect(r.header).toEqual(header);
      expect(r.trailer).toEqual(trailer);
      expect(r.pages.map((p) => p.pgno)).toEqual(pgnos);
      r.pages.forEach((p, i) => expect(bytesEqual(p.data, pages[i]!.data)).toBe('equal'));
    }
  });

  it('encodes deletion files (commit 0, no pages, PostApply FLAG), compressed or not', async () => {
    for (const flags of [0, 1]) {
      const h = newHeader({ flags, pageSize: 4096, commit: 0, minTXID: 9n, maxTXID: 9n, preApplyChecksum: CHECKSUM_FLAG | 77n });
      const b = encodeLtxToBuffer(h, [], CHECKSUM_FLAG);
      const v = await verifyLtxFile(b, { strict: true });
      expect(v.pageCount).toBe(0);
      expect(v.header.commit).toBe(0);
      expect(v.trailer.postApplyChecksum).toBe(CHECKSUM_FLAG);
      expect(codeOfSync(() => encodeLtxToBuffer(h, [], CHECKSUM_FLAG | 1n))).toBe('ERR_LTX_TRAILER_INVALID');
      expect(codeOfSync(() => encodeLtxToBuffer(h, [{ pgno: 1, data: new Uint8Array(4096) }], CHECKSUM_FLAG))).toBe('ERR_LTX_PAGE_INVALID');
    }
    // A deleted database's snapshot (MinTXID 1, commit 0) is also valid.
    const snap = newHeader({ pageSize: 4096, commit: 0, minTXID: 1n, maxTXID: 3n });
    expect((await verifyLtxFile(encodeLtxToBuffer(snap, [], CHECKSUM_FLAG), { strict: true })).pageCount).toBe(0);
  });
});

describe('encoder rules', () => {
  const inc = newHeader({ pageSize: 512, commit: 10, minTXID: 5n, maxTXID: 5n, preApplyChecksum: CHECKSUM_FLAG | 3n });
  const snap = newHeader({ pageSize: 512, commit: 10, minTXID: 1n, maxTXID: 5n });

  it('enforces the state machine', async () => {
    const enc = new LtxEncoder(new Collector());
    expect(await codeOf(enc.encodePage(1, zero512))).toBe('ERR_LTX_STATE');
    expect(await codeOf(enc.close(CHECKSUM_FLAG))).toBe('ERR_LTX_STATE');
    expect(await codeOf(enc.encodeHeader({ ...inc, pageSize: 500 }))).toBe('ERR_LTX_HEADER_INVALID');
    await enc.encodeHeader(inc);
    expect(await codeOf(enc.encodeHeader(inc))).toBe('ERR_LTX_STATE');
    await enc.encodePage(2, zero512);
    await enc.close(CHECKSUM_FLAG | 1n);
    expect(await codeOf(enc.encodePage(3, zero512))).toBe('ERR_LTX_STATE');
    expect(await codeOf(enc.close(CHECKSUM_FLAG | 1n))).toBe('ERR_LTX_STATE');
  });

  it('rejects bad page numbers, sizes and order in incrementals', async () => {
    const enc = new LtxEncoder(new Collector());
    await enc.encodeHeader(inc);
    expect(await codeOf(enc.encodePage(11, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    expect(await codeOf(enc.encodePage(0, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    expect(await codeOf(enc.encodePage(1.5, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    expect(await codeOf(enc.encodePage(3, new Uint8Array(511)))).toBe('ERR_LTX_PAGE_INVALID');
    await enc.encodePage(3, zero512);
    expect(await codeOf(enc.encodePage(3, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    expect(await codeOf(enc.encodePage(2, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    await enc.encodePage(4, zero512);
    expect(enc.pageCount).toBe(2);
  });

  it('rejects the lock page, and out-of-sequence snapshot pages', async () => {
    const big = newHeader({ pageSize: 65536, commit: 20000, minTXID: 3n, maxTXID: 3n, preApplyChecksum: CHECKSUM_FLAG });
    const page = new Uint8Array(65536);
    const enc = new LtxEncoder(new Collector());
    await enc.encodeHeader(big);
    await enc.encodePage(16384, page);
    expect(await codeOf(enc.encodePage(lockPgno(65536), page))).toBe('ERR_LTX_PAGE_INVALID');
    await enc.encodePage(16386, page);

    const s = new LtxEncoder(new Collector());
    await s.encodeHeader(snap);
    expect(await codeOf(s.encodePage(2, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    await s.encodePage(1, zero512);
    expect(await codeOf(s.encodePage(3, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    expect(await codeOf(s.encodePage(1, zero512))).toBe('ERR_LTX_PAGE_INVALID');
    await s.encodePage(2, zero512);
  });

  it('validates the trailer (flag bits, deletion rule) and stays usable after a refused close', async () => {
    for (const post of [0n, 5n, -1n, 1n << 64n]) {
      const enc = new LtxEncoder(new Collector());
      await enc.encodeHeader(inc);
      expect(await codeOf(enc.close(post))).toBe('ERR_LTX_TRAILER_INVALID');
    }
    const sink = new Collector();
    const enc = new LtxEncoder(sink);
    await enc.encodeHeader({ ...inc, flags: 1 });
    await enc.encodePage(1, zero512);
    expect(await codeOf(enc.close(7n))).toBe('ERR_LTX_TRAILER_INVALID');
    await enc.encodePage(2, zero512);
    await enc.close(CHECKSUM_FLAG | 7n);
    expect((await verifyLtxFile(sink.bytes(), { strict: true })).pgnos).toEqual([1, 2]);
  });

  it('makes one sink write for a small commit and owned 256 KiB chunks for a big one', async () => {
    const small = new Collector();
    const e1 = new LtxEncoder(small);
    await e1.encodeHeader(inc);
    for (const pgno of [1, 2, 3]) await e1.encodePage(pgno, zero512);
    await e1.close(CHECKSUM_FLAG | 1n);
    expect(small.chunks.length).toBe(1);

    const big = new Collector();
    const h = newHeader({ pageSize: 4096, commit: 200, minTXID: 1n, maxTXID: 1n });
    const rand = rng(3);
    const pages = Array.from({ length: 200 }, (_, i) => ({ pgno: i + 1, data: mixedPage(rand, 4096) }));
    const d = new DatabaseChecksum(4096);
    for (const p of pages) d.addPage(p.pgno, p.data);
    const e2 = new LtxEncoder(big);
    await e2.encodeHeader(h);
    for (const p of pages) await e2.encodePage(p.pgno, p.data);
    await e2.close(d.value);
    expect(big.chunks.length).toBe(4);
    expect(big.chunks.slice(0, 3).every((c) => c.length === 256 << 10)).toBe(true);
    expect(new Set(big.chunks.map((c) => c.buffer)).size).toBe(4);
    expect((await verifyLtxFile(big.bytes())).pageCount).toBe(200);
  });

  it('waits for an asynchronous sink and keeps chunk order', async () => {
    const got: Uint8Array[] = [];
    const sink: LtxSink = {
      write: (c) =>
        new Promise<void>((resolve) => {
          setTimeout(() => {
            got.push(c);
            resolve();
          }, 1);
        }),
    };
    const h = newHeader({ flags: 1, pageSize: 4096, commit: 100, minTXID: 4n, maxTXID: 4n, preApplyChecksum: CHECKSUM_FLAG });
    const rand = rng(12);
    const pages = Array.from({ length: 100 }, (_, i) => ({ pgno: i + 1, data: mixedPage(rand, 4096) }));
    const enc = new LtxEncoder(sink, { bufferSize: 10_000 });
    await enc.encodeHeader(h);
    for (const p of pages) await enc.encodePage(p.pgno, p.data);
    await enc.close(CHECKSUM_FLAG | 9n);
    expect(got.length).toBeGreaterThan(2);
    expect(bytesEqual(Buffer.concat(got), encodeLtxToBuffer(h, pages, CHECKSUM_FLAG | 9n))).toBe('equal');
  });
});

describe('decoder leniency (what Go accepts) and strict mode', () => {
  const inc = newHeader({ pageSize: 512, commit: 4, minTXID: 5n, maxTXID: 5n, preApplyChecksum: CHECKSUM_FLAG | 3n });
  const pg = (pgno: number, fill = pgno) => ({ pgno, data: new Uint8Array(512).fill(fill) });

  const cases: Array<[string, Uint8Array, DecoderOptions, string]> = [
    ['unordered pages', craftLtx(inc, [pg(3), pg(1)], CHECKSUM_FLAG | 1n), { checkPageOrder: true }, 'ERR_LTX_PAGE_INVALID'],
    ['duplicate pages', craftLtx(inc, [pg(2), pg(2)], CHECKSUM_FLAG | 1n), { checkPageOrder: true }, 'ERR_LTX_PAGE_INVALID'],
    ['pgno > commit', craftLtx(inc, [pg(1), pg(9)], CHECKSUM_FLAG | 1n), { checkPageBounds: true }, 'ERR_LTX_PAGE_INVALID'],
    [
      'trailing bytes',
      craftLtx(inc, [pg(1)], CHECKSUM_FLAG | 1n, { trailing: new Uint8Array([1]) }),
      { checkTrailingData: true },
      'ERR_LTX_TRAILING_DATA',
    ],
    [
      'incomplete snapshot',
      craftLtx(
        { ...inc, minTXID: 1n, preApplyChecksum: 0n },
        [pg(1), pg(2)],
        (() => {
          const d = new DatabaseChecksum(512);
          d.addPage(1, pg(1).data);
          d.addPage(2, pg(2).data);
          return d.value;
        })(),
      ),
      { checkPageOrder: true },
      'ERR_LTX_PAGE_INVALID',
    ],
    [
      'compressed, unordered',
      craftLtx({ ...inc, flags: 1 }, [pg(4), pg(2)], CHECKSUM_FLAG | 1n, { compress: true }),
      { strict: true },
      'ERR_LTX_PAGE_INVALID',
    ],
  ];
  for (const [name, bytes, opts, code] of cases) {
    it(`accepts ${name} by default and rejects it when asked (${code})`, async () => {
      expect((await verifyLtxFile(bytes)).trailer.postApplyChecksum > 0n).toBe(true);
      expect(await codeOf(verifyLtxFile(bytes, opts))).toBe(code);
      expect(await codeOf(verifyLtxFile(bytes, { strict: true }))).toBe(code);
      expect(
        await codeOf(
          verifyLtxFile(bytes, { ...opts, strict: true, checkPageOrder: false, checkPageBounds: false, checkTrailingData: false }),
        ),
      ).toBe('resolved');
    });
  }

  it('accepts the lock page in an incremental unless strict', async () => {
    const h = newHeader({ pageSize: 65536, commit: 20000, minTXID: 5n, maxTXID: 5n, preApplyChecksum: CHECKSUM_FLAG | 3n });
    const b = craftLtx(h, [{ pgno: lockPgno(65536), data: new Uint8Array(65536) }], CHECKSUM_FLAG | 1n);
    expect((await verifyLtxFile(b)).pgnos).toEqual([16385]);
    expect(await codeOf(verifyLtxFile(b, { checkPageBounds: true }))).toBe('ERR_LTX_PAGE_INVALID');
  });

  it('accepts non-zero reserved header bytes (they still count in the file checksum)', async () => {
    const b = craftLtx(inc, [pg(1)], CHECKSUM_FLAG | 1n, { reserved: new Uint8Array(20).fill(0xee) });
    expect((await verifyLtxFile(b, { strict: true })).pageCount).toBe(1);
  });

  it('checks a snapshot PostApply against its pages (lock page excluded)', async () => {
    const snap = newHeader({ pageSize: 512, commit: 2, minTXID: 1n, maxTXID: 1n });
    const b = craftLtx(snap, [pg(1), pg(2)], CHECKSUM_FLAG | 12345n);
    expect(await codeOf(verifyLtxFile(b))).toBe('ERR_LTX_DB_CHECKSUM_MISMATCH');
  });

  it('enforces its own state machine and releases owned files on close, destroy and failure', async () => {
    const fds = async () => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    const dec = new LtxDecoder(GO_LTX);
    expect(() => dec.header).toThrow(LtxError);
    await dec.decodeHeader();
    expect(await codeOf(dec.close())).toBe('ERR_LTX_STATE');
    await dec.destroy();
    expect(await codeOf(dec.nextPage())).toBe('ERR_LTX_STATE');
    expect(await fds()).toBe(before);

    await withTmpDir(async (dir) => {
      const bad = join(dir, 'bad.ltx');
      const raw = new Uint8Array(await readFile(GO_LTX));
      raw[5000]! ^= 1;
      await (await open(bad, 'w')).writeFile(raw).then(() => undefined);
      const before2 = await fds();
      const d2 = new LtxDecoder(bad);
      await d2.decodeHeader();
      for (let p = await d2.nextPage(); p !== null; p = await d2.nextPage());
      expect(await codeOf(d2.close())).toBe('ERR_LTX_CHECKSUM_MISMATCH');
      expect(await fds()).toBeLessThanOrEqual(before2);
      expect(await codeOf(d2.close())).toBe('ERR_LTX_STATE');
    });
  });

  it('returns null after the last page, and the same trailer from a second close', async () => {
    const dec = new LtxDecoder(GO_LTX);
    while ((await dec.nextPage()) !== null);
    expect(await dec.nextPage()).toBeNull();
    const t = await dec.close();
    expect(await dec.close()).toBe(t);
    expect(dec.trailer).toBe(t);
    expect(dec.pageCount).toBe(3);
  });
});

describe('snapshots across the lock page (1 GiB, streamed)', () => {
  it('encoder skips the lock page; decoder checks sequence and PostApply without it', async () => {
    const ps = 65536;
    const lock = lockPgno(ps);
    const commit = lock + 1;
    const header = newHeader({ pageSize: ps, commit, minTXID: 1n, maxTXID: 1n, flags: 1 });
    const page = new Uint8Array(ps);
    const d = new DatabaseChecksum(ps);
    // Page contents depend on pgno only through the checksum's pgno prefix.
    for (let p = 1; p <= commit; p++) if (p !== lock) d.addPage(p, page);

    // A bounded pipe: the encoder waits while the decoder consumes.
    const queue: Array<Uint8Array | null> = [];
    const signal: { wake?: () => void; drained?: () => void } = {};
    const sink: LtxSink = {
      async write(c) {
        queue.push(c);
        signal.wake?.();
        if (queue.length > 2) await new Promise<void>((r) => (signal.drained = r));
      },
    };
    async function* pipe(): AsyncGenerator<Uint8Array> {
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => (signal.wake = r));
        const c = queue.shift()!;
        signal.drained?.();
        if (c === null) return;
        yield c;
      }
    }
    const produce = (async () => {
      const enc = new LtxEncoder(sink);
      await enc.encodeHeader(header);
      for (let p = 1; p < lock; p++) await enc.encodePage(p, page);
      expect(await codeOf(enc.encodePage(lock, page))).toBe('ERR_LTX_PAGE_INVALID');
      expect(await codeOf(enc.encodePage(lock + 2, page))).toBe('ERR_LTX_PAGE_INVALID');
      await enc.encodePage(lock + 1, page);
      await enc.close(d.value);
      queue.push(null);
      signal.wake?.();
    })();
    const consume = verifyLtxFile(pipe(), { strict: true });
    const [, v] = await Promise.all([produce, consume]);
    expect(v.pageCount).toBe(commit - 1);
    expect(v.pgnos[lock - 2]).toBe(lock - 1);
    expect(v.pgnos[lock - 1]).toBe(lock + 1);
    expect(v.trailer.postApplyChecksum).toBe(d.value);
  }, 120_000);
});

describe('durable file writing', () => {
  it('writes via a temporary file and leaves nothing behind on failure', async () => {
    await withTmpDir(async (dir) => {
      const path = join(dir, '0000000000000001-0000000000000001.ltx');
      const h = newHeader({ pageSize: 512, commit: 1, minTXID: 1n, maxTXID: 1n });
      const t = await writeLtxFile(path, h, [{ pgno: 1, data: zero512 }], 0xefb1f44fecd99000n);
      expect(t.fileChecksum).toBe(0xb8dce58669778c30n);
      expect(await readdir(dir)).toEqual(['0000000000000001-0000000000000001.ltx']);
      expect((await verifyLtxFile(path)).size).toBe(636);

      const bad = join(dir, 'bad.ltx');
      async function* pages(): AsyncGenerator<Page> {
        yield { pgno: 1, data: zero512 };
        yield { pgno: 3, data: zero512 };
      }
      expect(await codeOf(writeLtxFile(bad, { ...h, commit: 3 }, pages(), CHECKSUM_FLAG | 1n))).toBe('ERR_LTX_PAGE_INVALID');
      expect(await readdir(dir)).toEqual(['0000000000000001-0000000000000001.ltx']);
    });
  });
});

describe('encoder sink failures', () => {
  it('passes the sink error on and refuses further use', async () => {
    let writes = 0;
    const boom = new Error('disk full');
    const sink: LtxSink = {
      write() {
        writes++;
        if (writes === 2) throw boom;
      },
    };
    const enc = new LtxEncoder(sink, { bufferSize: 600 });
    const h = newHeader({ pageSize: 512, commit: 5, minTXID: 2n, maxTXID: 2n, preApplyChecksum: CHECKSUM_FLAG | 1n });
    await enc.encodeHeader(h);
    await enc.encodePage(1, zero512); // first 600 bytes written
    await enc.encodePage(2, zero512); // buffered
    await expect(enc.encodePage(3, zero512)).rejects.toBe(boom);
    expect(writes).toBe(2);
    expect(await codeOf(enc.encodePage(4, zero512))).toBe('ERR_LTX_STATE');
    expect(await codeOf(enc.close(CHECKSUM_FLAG | 1n))).toBe('ERR_LTX_STATE');
  });
});
