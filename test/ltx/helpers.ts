import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Crc64 } from '../../src/ltx/crc64.js';
import { marshalHeader } from '../../src/ltx/header.js';
import { Lz4FrameWriter } from '../../src/ltx/lz4frame.js';
import { DatabaseChecksum } from '../../src/ltx/checksum.js';
import { encodeLtxToBuffer } from '../../src/ltx/encoder.js';
import { newHeader, type Header } from '../../src/ltx/types.js';

export const FIXTURE_DIR = '/work/shared/fixtures/litefs-open-and-write-snapshot';
export const GO_LTX = join(FIXTURE_DIR, '000000000000000d-000000000000000d.ltx');
export const GO_DB = join(FIXTURE_DIR, 'database');
export const LOCAL_FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Page content that compresses partly: a random head, then a repeated pattern. */
export function mixedPage(rand: () => number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const kind = randInt(rand, 0, 3);
  if (kind === 0) return randomBytes(rand, size);
  if (kind === 1) return b.fill(randInt(rand, 0, 255));
  const head = randInt(rand, 0, size);
  b.set(randomBytes(rand, head));
  const pat = randomBytes(rand, randInt(rand, 1, 16));
  for (let i = head; i < size; i++) b[i] = pat[i % pat.length]!;
  return b;
}

const P = 0xd800000000000000n;
const M64 = (1n << 64n) - 1n;

/** Bit-at-a-time CRC-64/GO-ISO in BigInt: slow, obviously correct. */
export function referenceCrc64(data: Uint8Array, prev = 0n): bigint {
  let c = ~prev & M64;
  for (const byte of data) {
    c ^= BigInt(byte);
    for (let k = 0; k < 8; k++) c = (c & 1n) === 1n ? (c >> 1n) ^ P : c >> 1n;
  }
  return ~c & M64;
}

export async function withTmpDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'litefs-ltx-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Feeds `data` as chunks of random sizes (1..maxChunk). */
export async function* chunked(data: Uint8Array, rand: () => number, maxChunk: number): AsyncGenerator<Uint8Array> {
  let i = 0;
  while (i < data.length) {
    const n = randInt(rand, 1, maxChunk);
    yield data.slice(i, i + n);
    i += n;
  }
}

/**
 * An independent LZ4 block decoder (straight from the block format spec),
 * used to check our frames without going through lz4_flex.
 */
export function referenceLz4Block(src: Uint8Array, maxOut: number): Uint8Array {
  const out = new Uint8Array(maxOut);
  let o = 0;
  let i = 0;
  for (;;) {
    const token = src[i++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        b = src[i++]!;
        lit += b;
      } while (b === 255);
    }
    out.set(src.subarray(i, i + lit), o);
    o += lit;
    i += lit;
    if (i >= src.length) break;
    const off = src[i]! | (src[i + 1]! << 8);
    i += 2;
    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do {
        b = src[i++]!;
        ml += b;
      } while (b === 255);
    }
    ml += 4;
    if (off === 0 || off > o) throw new Error(`bad match offset ${off} at output ${o}`);
    for (let k = 0; k < ml; k++, o++) out[o] = out[o - off]!;
  }
  return out.subarray(0, o);
}

/** Parses an LZ4 frame with the reference block decoder; returns content and frame length. */
export function referenceLz4Frame(buf: Uint8Array): { content: Uint8Array; length: number; flg: number; bd: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0, true) !== 0x184d2204) throw new Error('bad magic');
  const flg = buf[4]!;
  const bd = buf[5]!;
  let p = 7 + ((flg & 0x08) !== 0 ? 8 : 0);
  const max = 1 << (8 + 2 * ((bd >>> 4) & 7));
  const parts: Uint8Array[] = [];
  for (;;) {
    const sz = dv.getUint32(p, true);
    p += 4;
    if (sz === 0) break;
    const len = sz & 0x7fffffff;
    const blk = buf.subarray(p, p + len);
    p += len;
    parts.push((sz & 0x80000000) !== 0 ? blk.slice() : referenceLz4Block(blk, max));
    if ((flg & 0x10) !== 0) p += 4;
  }
  if ((flg & 0x04) !== 0) p += 4;
  const total = parts.reduce((n, x) => n + x.length, 0);
  const content = new Uint8Array(total);
  let o = 0;
  for (const x of parts) {
    content.set(x, o);
    o += x.length;
  }
  return { content, length: p, flg, bd };
}

/**
 * Byte equality without vitest's element-by-element deep compare (slow on
 * large arrays); a failure names the length or the first differing offset.
 */
export function bytesEqual(actual: Uint8Array, expected: Uint8Array): string {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  if (
    Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length))
  ) {
    return 'equal';
  }
  let i = 0;
  while (actual[i] === expected[i]) i++;
  return `differ at byte ${i}: ${actual[i]} != ${expected[i]}`;
}

/**
 * Builds an LTX file byte by byte with a correct file checksum but none of
 * the encoder's rules, to feed the decoder what Go would accept (or not).
 */
export function craftLtx(
  header: Header,
  pages: Array<{ pgno: number; data: Uint8Array }>,
  postApplyChecksum: bigint,
  opts: { reserved?: Uint8Array; compress?: boolean; trailing?: Uint8Array } = {},
): Uint8Array {
  const hb = marshalHeader(header);
  if (opts.reserved !== undefined) hb.set(opts.reserved, 80);
  const body: Uint8Array[] = [];
  for (const p of pages) {
    const ph = new Uint8Array(4);
    new DataView(ph.buffer).setUint32(0, p.pgno);
    body.push(ph, p.data);
  }
  body.push(new Uint8Array(4));
  const logical = new Uint8Array(body.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of body) {
    logical.set(b, o);
    o += b.length;
  }
  const post = new Uint8Array(8);
  new DataView(post.buffer).setBigUint64(0, postApplyChecksum);
  const fileChecksum = (1n << 63n) | new Crc64().update(hb).update(logical).update(post).digest();
  let stored = logical;
  if (opts.compress === true) {
    const parts: Uint8Array[] = [];
    const w = new Lz4FrameWriter((c) => parts.push(c.slice()));
    w.write(logical);
    w.close();
    stored = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
    let q = 0;
    for (const b of parts) {
      stored.set(b, q);
      q += b.length;
    }
  }
  const trailing = opts.trailing ?? new Uint8Array(0);
  const out = new Uint8Array(100 + stored.length + 16 + trailing.length);
  out.set(hb, 0);
  out.set(stored, 100);
  const tv = new DataView(out.buffer, 100 + stored.length, 16);
  tv.setBigUint64(0, postApplyChecksum);
  tv.setBigUint64(8, fileChecksum);
  out.set(trailing, 100 + stored.length + 16);
  return out;
}

/**
 * A database held as pages in memory, producing the LTX files LiteFS would
 * write for each transaction (snapshot first, then incrementals).
 */
export class DbModel {
  pages = new Map<number, Uint8Array>();
  commit = 0;
  txid = 0n;

  constructor(readonly pageSize: number) {}

  checksum(): bigint {
    const d = new DatabaseChecksum(this.pageSize);
    for (const [pgno, data] of this.pages) if (pgno <= this.commit) d.addPage(pgno, data);
    return d.value;
  }

  /** Applies a transaction; returns its LTX bytes. */
  tx(changes: Map<number, Uint8Array>, commit: number, opts: { flags?: number; timestamp?: bigint; nodeID?: bigint } = {}): Uint8Array {
    const pre = this.txid === 0n ? 0n : this.checksum();
    for (const [pgno, data] of changes) this.pages.set(pgno, data);
    for (const pgno of [...this.pages.keys()]) if (pgno > commit) this.pages.delete(pgno);
    this.commit = commit;
    this.txid++;
    const snapshot = this.txid === 1n;
    const pgnos = snapshot ? [...this.pages.keys()] : [...changes.keys()].filter((p) => p <= commit);
    pgnos.sort((a, b) => a - b);
    const h = newHeader({
      flags: opts.flags ?? 0,
      pageSize: this.pageSize,
      commit,
      minTXID: this.txid,
      maxTXID: this.txid,
      timestamp: opts.timestamp ?? this.txid * 1000n,
      preApplyChecksum: pre,
      nodeID: opts.nodeID ?? 0n,
      ...(snapshot ? {} : { walOffset: 32n, walSize: 100n, walSalt1: 7, walSalt2: 8 }),
    });
    return encodeLtxToBuffer(
      h,
      pgnos.map((pgno) => ({ pgno, data: this.pages.get(pgno)! })),
      this.checksum(),
    );
  }

  /** The raw database file bytes (pages 1..commit). */
  file(): Uint8Array {
    const out = new Uint8Array(this.commit * this.pageSize);
    for (const [pgno, data] of this.pages) out.set(data, (pgno - 1) * this.pageSize);
    return out;
  }
}

/** A page 1 that carries a valid SQLite header for the given size (as SQLite rewrites on every commit). */
export function sqlitePage1(pageSize: number, pageCount: number, counter: number, fill = 0): Uint8Array {
  const p = new Uint8Array(pageSize).fill(fill);
  p.set(new TextEncoder().encode('SQLite format 3\0'), 0);
  const dv = new DataView(p.buffer);
  dv.setUint16(16, pageSize === 65536 ? 1 : pageSize);
  dv.setUint32(24, counter);
  dv.setUint32(28, pageCount);
  dv.setUint32(92, counter);
  return p;
}
