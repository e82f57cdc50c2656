/**
 * The LZ4 frame format (lz4_Frame_format.md v1.6) around raw blocks from
 * lz4block.ts. LTX v1 puts the whole page block (page frames plus the 4-byte
 * zero terminator) in one frame; the trailer follows it uncompressed.
 *
 * Writer: frames like Go's pierrec/lz4 with Block64Kb — FLG 0x64 (version
 * 01, independent blocks, content checksum), BD 0x40 (64 KiB blocks), no
 * content size, no block checksums — and stores a block uncompressed when
 * LZ4 does not shrink it.
 *
 * Reader: accepts any conforming frame with block size 64 KiB..4 MiB, with
 * or without content size, block checksums, content checksum, and linked
 * (dependent) blocks; skippable frames before it are skipped. It rejects a
 * wrong magic, a version other than 01, a dictionary ID, a bad header
 * checksum byte, an invalid block size code, a block larger than the
 * declared maximum, a bad block or content checksum and any truncation.
 * Reserved bits are not checked (Go does not either).
 */
import { compressBlock, compressBlockAsync, decompressBlock } from './lz4block.js';
import { LtxError } from './errors.js';
import { ChunkReader } from './reader.js';
import { Xxh32, xxh32 } from './xxh32.js';

export const LZ4_FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_01 = 0x40;
const FLG_BLOCK_INDEPENDENT = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_DICT_ID = 0x01;
const BLOCK_UNCOMPRESSED = 0x80000000;
const BLOCK_SIZES: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };

/** What our writer emits, as Go does: FLG 0x64, BD 0x40. */
export const WRITER_FLG = FLG_VERSION_01 | FLG_BLOCK_INDEPENDENT | FLG_CONTENT_CHECKSUM;
export const WRITER_BD = 0x40;
export const WRITER_BLOCK_SIZE = 64 << 10;

/** The frame descriptor checksum byte: second byte of xxh32 over the descriptor. */
export function headerChecksum(descriptor: Uint8Array): number {
  return (xxh32(descriptor) >>> 8) & 0xff;
}

function lz4Error(message: string, field: string, value?: string | number): LtxError {
  return new LtxError('ERR_LTX_LZ4', message, value === undefined ? { field } : { field, value });
}

function u32le(b: Uint8Array, i = 0): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

function putU32le(b: Uint8Array, i: number, v: number): void {
  b[i] = v & 0xff;
  b[i + 1] = (v >>> 8) & 0xff;
  b[i + 2] = (v >>> 16) & 0xff;
  b[i + 3] = (v >>> 24) & 0xff;
}

export interface Lz4FrameWriterOptions {
  /**
   * Blocks compressed at once on libuv's thread pool. 0 (the default)
   * compresses synchronously inside write(); with N > 0, write() only queues
   * full blocks and flush() emits them in order as they finish.
   */
  concurrency?: number;
}

interface PendingBlock {
  src: Uint8Array;
  packed: Promise<Uint8Array | null>;
}

/**
 * Streaming frame writer. Output goes to `emit`, always in frame order;
 * chunks handed to emit may be reused afterwards, so the receiver must copy
 * them. In concurrent mode the caller interleaves writes with `flush(n)` to
 * bound the blocks in flight, and must `await flush(0)` after close().
 */
export class Lz4FrameWriter {
  private block = new Uint8Array(WRITER_BLOCK_SIZE);
  private fill = 0;
  private readonly content = new Xxh32();
  private readonly small = new Uint8Array(8);
  private readonly concurrency: number;
  private readonly pending: PendingBlock[] = [];
  private closed = false;
  private ended = false;

  constructor(
    private readonly emit: (chunk: Uint8Array) => void,
    opts: Lz4FrameWriterOptions = {},
  ) {
    this.concurrency = Math.max(0, Math.floor(opts.concurrency ?? 0));
    const hdr = new Uint8Array(7);
    putU32le(hdr, 0, LZ4_FRAME_MAGIC);
    hdr[4] = WRITER_FLG;
    hdr[5] = WRITER_BD;
    hdr[6] = headerChecksum(hdr.subarray(4, 6));
    emit(hdr);
  }

  /** Blocks queued for compression and not yet emitted. */
  get inFlight(): number {
    return this.pending.length;
  }

  write(data: Uint8Array): void {
    if (this.closed) throw new LtxError('ERR_LTX_STATE', 'LZ4 frame writer already closed');
    let i = 0;
    while (i < data.length) {
      const take = Math.min(data.length - i, WRITER_BLOCK_SIZE - this.fill);
      this.block.set(data.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill === WRITER_BLOCK_SIZE) this.endBlock();
    }
  }

  /**
   * Ends the frame: the last block, the end mark and the content checksum
   * are emitted now in synchronous mode, or by flush(0) in concurrent mode.
   */
  close(): void {
    if (this.closed) return;
    if (this.fill > 0) this.endBlock();
    this.closed = true;
    if (this.pending.length === 0) this.emitEnd();
  }

  /** Emits finished blocks in order until at most `maxInFlight` remain queued. */
  async flush(maxInFlight = 0): Promise<void> {
    while (this.pending.length > maxInFlight) {
      const head = this.pending[0]!;
      const packed = await head.packed;
      this.pending.shift();
      this.emitBlock(head.src, packed);
    }
    if (this.closed && this.pending.length === 0) this.emitEnd();
  }

  private endBlock(): void {
    const src = this.block.subarray(0, this.fill);
    this.content.update(src);
    if (this.concurrency === 0) {
      this.emitBlock(src, compressBlock(src));
      this.fill = 0;
      return;
    }
    const packed = compressBlockAsync(src);
    // Observed when flushed; this only keeps an abandoned writer from raising unhandled rejections.
    packed.catch(() => {});
    this.pending.push({ src, packed });
    // The queued block is read by a pool thread: continue in a fresh buffer.
    this.block = new Uint8Array(WRITER_BLOCK_SIZE);
    this.fill = 0;
  }

  private emitBlock(src: Uint8Array, packed: Uint8Array | null): void {
    if (packed === null) {
      putU32le(this.small, 0, (src.length | BLOCK_UNCOMPRESSED) >>> 0);
      this.emit(this.small.subarray(0, 4));
      this.emit(src);
    } else {
      putU32le(this.small, 0, packed.length);
      this.emit(this.small.subarray(0, 4));
      this.emit(packed);
    }
  }

  private emitEnd(): void {
    if (this.ended) return;
    this.ended = true;
    putU32le(this.small, 0, 0);
    putU32le(this.small, 4, this.content.digest());
    this.emit(this.small);
  }
}

/**
 * Streaming frame reader over the raw file reader. Exposes the decompressed
 * bytes as a ChunkReader (`body`); after the caller has read everything it
 * expects, `expectEnd()` requires the frame to end there, checks the content
 * checksum, and leaves `raw` positioned just past the frame.
 */
export class Lz4FrameReader {
  readonly body: ChunkReader;
  private flags = 0;
  private maxBlock = 0;
  private content: Xxh32 | null = null;
  private window: Uint8Array | null = null;
  private finished = false;
  private started = false;

  constructor(private readonly raw: ChunkReader) {
    this.body = new ChunkReader(() => this.nextBlock(), 'LZ4 frame');
  }

  async readHeader(): Promise<void> {
    if (this.started) return;
    this.started = true;
    let magic = u32le(await this.raw.read(4, 'LZ4 frame magic'));
    while ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      const size = u32le(await this.raw.read(4, 'LZ4 skippable frame size'));
      await this.raw.skip(size, 'LZ4 skippable frame');
      magic = u32le(await this.raw.read(4, 'LZ4 frame magic'));
    }
    if (magic !== LZ4_FRAME_MAGIC) {
      throw lz4Error(`bad LZ4 frame magic 0x${magic.toString(16).padStart(8, '0')}`, 'magic', magic);
    }
    const fb = await this.raw.read(2, 'LZ4 frame descriptor');
    const flg = fb[0]!;
    const bd = fb[1]!;
    if ((flg & FLG_VERSION_MASK) !== FLG_VERSION_01) {
      throw lz4Error(`unsupported LZ4 frame version ${flg >>> 6} (FLG 0x${flg.toString(16)})`, 'FLG', flg);
    }
    if ((flg & FLG_DICT_ID) !== 0) throw lz4Error('LZ4 frames with a dictionary ID are not supported', 'FLG', flg);
    const maxBlock = BLOCK_SIZES[(bd >>> 4) & 0x7];
    if (maxBlock === undefined) throw lz4Error(`invalid LZ4 block size code in BD 0x${bd.toString(16)}`, 'BD', bd);
    const desc = new Uint8Array(10);
    desc[0] = flg;
    desc[1] = bd;
    let descLen = 2;
    if ((flg & FLG_CONTENT_SIZE) !== 0) {
      desc.set(await this.raw.read(8, 'LZ4 content size'), 2);
      descLen = 10;
    }
    const hc = (await this.raw.read(1, 'LZ4 header checksum'))[0]!;
    const want = headerChecksum(desc.subarray(0, descLen));
    if (hc !== want) {
      throw lz4Error(`bad LZ4 frame header checksum 0x${hc.toString(16)}, expected 0x${want.toString(16)}`, 'HC', hc);
    }
    this.flags = flg;
    this.maxBlock = maxBlock;
    this.content = (flg & FLG_CONTENT_CHECKSUM) !== 0 ? new Xxh32() : null;
  }

  /** Requires the frame to have no data left; consumes the end mark and content checksum. */
  async expectEnd(): Promise<void> {
    if (!(await this.body.atEnd())) {
      throw lz4Error('expected LZ4 end frame: data follows the LTX page block inside the frame', 'frame');
    }
  }

  private async nextBlock(): Promise<Uint8Array | null> {
    if (this.finished) return null;
    if (!this.started) await this.readHeader();
    const size = u32le(await this.raw.read(4, 'LZ4 block size'));
    if (size === 0) {
      await this.finish();
      return null;
    }
    const stored = (size & BLOCK_UNCOMPRESSED) !== 0;
    const len = size & 0x7fffffff;
    if (len > this.maxBlock) {
      throw lz4Error(`LZ4 block of ${len} bytes exceeds the frame's ${this.maxBlock}-byte maximum`, 'block', len);
    }
    const data = await this.raw.read(len, 'LZ4 block');
    const hasBlockSum = (this.flags & FLG_BLOCK_CHECKSUM) !== 0;
    // Hash the stored bytes before the next raw read can reuse their buffer.
    const storedSum = hasBlockSum ? xxh32(data) : 0;
    let out: Uint8Array;
    if (stored) {
      // A raw view stays valid until the next raw read; with block checksums that read comes
      // before the body has used the block, so keep a copy then.
      out = hasBlockSum ? data.slice() : data;
    } else {
      out = decompressBlock(data, this.maxBlock, this.window);
    }
    if (hasBlockSum) {
      const sum = u32le(await this.raw.read(4, 'LZ4 block checksum'));
      // The spec hashes the stored bytes; pierrec/lz4 hashed the decoded bytes. Either proves integrity.
      if (sum !== storedSum && (stored || sum !== xxh32(out))) {
        throw lz4Error(`LZ4 block checksum mismatch (0x${sum.toString(16)})`, 'blockChecksum', sum);
      }
    }
    this.content?.update(out);
    if ((this.flags & FLG_BLOCK_INDEPENDENT) === 0) this.slideWindow(out);
    return out;
  }

  // Linked blocks may reference up to 64 KiB of previously decoded output.
  private slideWindow(out: Uint8Array): void {
    const keep = 64 << 10;
    const prev = this.window ?? new Uint8Array(0);
    const joined = new Uint8Array(Math.min(keep, prev.length + out.length));
    const fromOut = Math.min(out.length, joined.length);
    const fromPrev = joined.length - fromOut;
    joined.set(prev.subarray(prev.length - fromPrev), 0);
    joined.set(out.subarray(out.length - fromOut), fromPrev);
    this.window = joined;
  }

  private async finish(): Promise<void> {
    this.finished = true;
    if (this.content !== null) {
      const sum = u32le(await this.raw.read(4, 'LZ4 content checksum'));
      const want = this.content.digest();
      if (sum !== want) {
        throw lz4Error(
          `LZ4 content checksum mismatch: stored 0x${sum.toString(16)}, computed 0x${want.toString(16)}`,
          'contentChecksum',
          sum,
        );
      }
    }
  }
}
