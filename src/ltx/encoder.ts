/**
 * Streaming LTX v1 encoder: header → pages → close(postApply) → Trailer.
 * Enforces the encoder rules of ltx v0.3.14 (state machine, page bounds,
 * the lock page, snapshot page sequence, increasing page numbers in
 * incrementals, trailer validation). Output is buffered (256 KiB by
 * default) so a small commit reaches the sink in one or two writes; every
 * chunk handed to the sink is freshly allocated and owned by it.
 */
import { CHECKSUM_FLAG, lockPgno } from './checksum.js';
import { Crc64 } from './crc64.js';
import { LtxError } from './errors.js';
import { marshalHeader, marshalTrailer, validateHeader, validateTrailer } from './header.js';
import { Lz4FrameWriter } from './lz4frame.js';
import { HEADER_FLAG_COMPRESS_LZ4, PAGE_HEADER_SIZE, TRAILER_SIZE, isSnapshot, type Header, type Page, type Trailer } from './types.js';

/** Where encoded bytes go: a file, an HTTP response, a collector. */
export interface LtxSink {
  write(chunk: Uint8Array): void | Promise<void>;
}

export interface EncoderOptions {
  /** Bytes gathered before a sink write; default 256 KiB. */
  bufferSize?: number;
  /**
   * LZ4 blocks compressed in parallel on libuv's thread pool (compressed
   * files only); default 4. 0 compresses on the calling thread.
   */
  lz4Concurrency?: number;
}

export const DEFAULT_ENCODER_BUFFER = 256 << 10;
export const DEFAULT_LZ4_CONCURRENCY = 4;

type State = 'header' | 'page' | 'closing' | 'closed';

/** Accumulates output into owned chunks of a fixed size. */
class OutputBuffer {
  private buf: Uint8Array;
  private fill = 0;
  readonly ready: Uint8Array[] = [];
  total = 0;

  constructor(private readonly size: number) {
    this.buf = new Uint8Array(size);
  }

  push(data: Uint8Array): void {
    let i = 0;
    this.total += data.length;
    while (i < data.length) {
      const take = Math.min(data.length - i, this.size - this.fill);
      this.buf.set(data.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill === this.size) {
        this.ready.push(this.buf);
        this.buf = new Uint8Array(this.size);
        this.fill = 0;
      }
    }
  }

  /** Moves the partly filled buffer to `ready`. */
  flushTail(): void {
    if (this.fill === 0) return;
    this.ready.push(this.buf.subarray(0, this.fill));
    this.buf = new Uint8Array(this.size);
    this.fill = 0;
  }
}

function stateError(op: string, state: State): LtxError {
  return new LtxError(
    'ERR_LTX_STATE',
    state === 'closed' || state === 'closing'
      ? `LTX encoder closed: cannot ${op}`
      : `cannot ${op}: encoder expects ${state === 'header' ? 'the header' : 'pages or close'}`,
    { field: 'state', value: state },
  );
}

function pageError(message: string, pgno: number): LtxError {
  return new LtxError('ERR_LTX_PAGE_INVALID', message, { field: 'pgno', value: pgno });
}

/**
 * The synchronous core shared by LtxEncoder and encodeLtxToBuffer. It never
 * touches the sink; output accumulates in `out.ready`.
 */
class EncoderCore {
  state: State = 'header';
  hdr: Header | null = null;
  pageCount = 0;
  trailer: Trailer | null = null;
  readonly out: OutputBuffer;
  private readonly hash = new Crc64();
  lz4: Lz4FrameWriter | null = null;
  private prevPgno = 0;
  private lock = 0;
  private postApply = 0n;
  private readonly pageHdr = new Uint8Array(PAGE_HEADER_SIZE);

  constructor(
    bufferSize: number,
    private readonly lz4Concurrency: number,
  ) {
    this.out = new OutputBuffer(bufferSize);
  }

  encodeHeader(h: Header): void {
    if (this.state !== 'header') throw stateError('encode the header', this.state);
    validateHeader(h);
    this.hdr = { ...h };
    this.lock = lockPgno(h.pageSize);
    const b = marshalHeader(h);
    this.hash.update(b);
    this.out.push(b);
    if ((h.flags & HEADER_FLAG_COMPRESS_LZ4) !== 0) {
      this.lz4 = new Lz4FrameWriter((c) => this.out.push(c), { concurrency: this.lz4Concurrency });
    }
    this.state = 'page';
  }

  encodePage(pgno: number, data: Uint8Array): void {
    if (this.state !== 'page') throw stateError('encode a page', this.state);
    const h = this.hdr!;
    if (!Number.isInteger(pgno) || pgno < 0 || pgno > 0xffffffff) throw pageError(`invalid page number ${pgno}`, pgno);
    if (pgno > h.commit) throw pageError(`page number ${pgno} out of bounds for commit size ${h.commit}`, pgno);
    if (pgno === 0) throw pageError('page number 0 is not allowed', pgno);
    if (data.length !== h.pageSize) {
      throw new LtxError('ERR_LTX_PAGE_INVALID', `page ${pgno} has ${data.length} bytes, page size is ${h.pageSize}`, {
        field: 'data',
        value: data.length,
      });
    }
    if (pgno === this.lock) throw pageError(`cannot encode the lock page (pgno ${pgno})`, pgno);
    const prev = this.prevPgno;
    if (isSnapshot(h)) {
      if (prev === 0 && pgno !== 1) throw pageError(`snapshot must start with page 1, got ${pgno}`, pgno);
      if (prev === this.lock - 1) {
        if (pgno !== prev + 2) {
          throw pageError(`nonsequential page numbers in snapshot (lock page skipped): ${prev},${pgno}`, pgno);
        }
      } else if (prev !== 0 && pgno !== prev + 1) {
        throw pageError(`nonsequential page numbers in snapshot: ${prev},${pgno}`, pgno);
      }
    } else if (prev >= pgno) {
      throw pageError(`out-of-order page numbers: ${prev},${pgno}`, pgno);
    }

    const ph = this.pageHdr;
    ph[0] = pgno >>> 24;
    ph[1] = (pgno >>> 16) & 0xff;
    ph[2] = (pgno >>> 8) & 0xff;
    ph[3] = pgno & 0xff;
    this.body(ph);
    this.body(data);
    this.prevPgno = pgno;
    this.pageCount++;
  }

  /**
   * Checks PostApply, writes the zero page header and ends the LZ4 frame.
   * With concurrent compression the frame's last blocks are still pending
   * in `lz4` afterwards; finishClose() runs once they are flushed.
   */
  beginClose(postApplyChecksum: bigint): void {
    if (this.state !== 'page') throw stateError('close', this.state);
    if (typeof postApplyChecksum !== 'bigint' || postApplyChecksum < 0n || postApplyChecksum >= 1n << 64n) {
      throw new LtxError('ERR_LTX_TRAILER_INVALID', `invalid post-apply checksum ${String(postApplyChecksum)}`, {
        field: 'postApplyChecksum',
        value: String(postApplyChecksum),
      });
    }
    // The file checksum always carries the flag, so the rules can be checked
    // before the terminator goes out and a refused close leaves the encoder usable.
    validateTrailer({ postApplyChecksum, fileChecksum: CHECKSUM_FLAG }, this.hdr!.commit);
    this.postApply = postApplyChecksum;
    this.pageHdr.fill(0);
    this.body(this.pageHdr);
    this.lz4?.close();
    this.state = 'closing';
  }

  finishClose(): Trailer {
    if (this.state !== 'closing') throw stateError('close', this.state);
    const tb = new Uint8Array(TRAILER_SIZE);
    marshalTrailer({ postApplyChecksum: this.postApply, fileChecksum: 0n }, tb);
    this.hash.update(tb.subarray(0, 8));
    const trailer = { postApplyChecksum: this.postApply, fileChecksum: CHECKSUM_FLAG | this.hash.digest() };
    validateTrailer(trailer, this.hdr!.commit);
    marshalTrailer(trailer, tb);
    this.out.push(tb);
    this.out.flushTail();
    this.trailer = trailer;
    this.state = 'closed';
    this.lz4 = null;
    return trailer;
  }

  private body(b: Uint8Array): void {
    this.hash.update(b);
    if (this.lz4 !== null) this.lz4.write(b);
    else this.out.push(b);
  }
}

export class LtxEncoder {
  private readonly core: EncoderCore;
  private readonly concurrency: number;

  constructor(
    private readonly sink: LtxSink,
    opts: EncoderOptions = {},
  ) {
    const size = opts.bufferSize ?? DEFAULT_ENCODER_BUFFER;
    if (!Number.isInteger(size) || size < 64) throw new RangeError(`encoder buffer size ${size} is too small`);
    this.concurrency = Math.max(0, Math.floor(opts.lz4Concurrency ?? DEFAULT_LZ4_CONCURRENCY));
    this.core = new EncoderCore(size, this.concurrency);
  }

  /** The header written, once encodeHeader succeeded. */
  get header(): Header | null {
    return this.core.hdr === null ? null : { ...this.core.hdr };
  }

  get pageCount(): number {
    return this.core.pageCount;
  }

  /** Bytes produced so far (including bytes still buffered). */
  get bytesWritten(): number {
    return this.core.out.total;
  }

  /** The trailer, once close succeeded. */
  get trailer(): Trailer | null {
    return this.core.trailer;
  }

  async encodeHeader(h: Header): Promise<void> {
    this.usable('encode the header');
    this.core.encodeHeader(h);
    await this.drain(this.concurrency);
  }

  /** `data` is copied before this returns (synchronously), so the caller may reuse it. */
  async encodePage(pgno: number, data: Uint8Array): Promise<void> {
    this.usable('encode a page');
    this.core.encodePage(pgno, data);
    await this.drain(this.concurrency);
  }

  async close(postApplyChecksum: bigint): Promise<Trailer> {
    this.usable('close');
    this.core.beginClose(postApplyChecksum);
    await this.drain(0);
    const t = this.core.finishClose();
    await this.drain(0);
    return t;
  }

  private sinkError: unknown = undefined;

  // Once the sink (or a compression) has failed, bytes are missing from the output: refuse to go on.
  private usable(op: string): void {
    if (this.sinkError !== undefined) {
      throw new LtxError('ERR_LTX_STATE', `cannot ${op}: an earlier write failed`, {
        field: 'state',
        value: 'failed',
        cause: this.sinkError,
      });
    }
  }

  /** Emits compressed blocks until at most `maxInFlight` are pending, then writes full chunks. */
  private async drain(maxInFlight: number): Promise<void> {
    const ready = this.core.out.ready;
    try {
      const lz4 = this.core.lz4;
      if (lz4 !== null && lz4.inFlight > maxInFlight) await lz4.flush(maxInFlight);
      while (ready.length > 0) await this.sink.write(ready.shift()!);
    } catch (err) {
      this.sinkError = err;
      ready.length = 0;
      throw err;
    }
  }
}

/** Encodes a whole LTX file in memory. For tests and small files. */
export function encodeLtxToBuffer(header: Header, pages: Iterable<Page>, postApplyChecksum: bigint): Uint8Array {
  const core = new EncoderCore(DEFAULT_ENCODER_BUFFER, 0);
  core.encodeHeader(header);
  for (const p of pages) core.encodePage(p.pgno, p.data);
  core.beginClose(postApplyChecksum);
  core.finishClose();
  const chunks = core.out.ready;
  if (chunks.length === 1) return chunks[0]!;
  const all = new Uint8Array(core.out.total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}
