/**
 * Streaming LTX v1 decoder: decodeHeader() → nextPage()… → close().
 *
 * By default it accepts exactly what Go's ltx v0.3.14 decoder accepts (no
 * page-order, bounds, completeness or trailing-data checks) while always
 * verifying the file checksum over the logical (uncompressed) stream and,
 * for snapshots, the recomputed database checksum against PostApply. The
 * `strict` options add the checks our own store wants.
 *
 * Memory is constant: one source chunk, one LZ4 block and one page at a time.
 */
import { CHECKSUM_FLAG, DatabaseChecksum, lockPgno } from './checksum.js';
import { Crc64 } from './crc64.js';
import { LtxError, hex64 } from './errors.js';
import { unmarshalHeader, unmarshalTrailer, validateHeader } from './header.js';
import { Lz4FrameReader } from './lz4frame.js';
import { ChunkReader, openSource, type ChunkSource, type LtxSource } from './reader.js';
import {
  HEADER_FLAG_COMPRESS_LZ4,
  HEADER_SIZE,
  PAGE_HEADER_SIZE,
  TRAILER_SIZE,
  isSnapshot,
  type Header,
  type Page,
  type Trailer,
} from './types.js';

export interface DecoderOptions {
  /** Turns on every check below (each can still be switched off one by one). */
  strict?: boolean;
  /**
   * Incrementals: page numbers strictly increasing. Snapshots: pages
   * 1..commit in sequence with the lock page skipped, and none missing.
   */
  checkPageOrder?: boolean;
  /** Every page number ≤ commit and never the lock page. */
  checkPageBounds?: boolean;
  /** No byte may follow the trailer. */
  checkTrailingData?: boolean;
}

type State = 'header' | 'page' | 'close' | 'closed' | 'failed';

function stateError(op: string, state: State): LtxError {
  return new LtxError('ERR_LTX_STATE', `cannot ${op}: decoder is in state "${state}"`, { field: 'state', value: state });
}

function pageError(message: string, pgno: number): LtxError {
  return new LtxError('ERR_LTX_PAGE_INVALID', message, { field: 'pgno', value: pgno });
}

export class LtxDecoder {
  private state: State = 'header';
  private src: ChunkSource | null = null;
  private raw: ChunkReader | null = null;
  private body: ChunkReader | null = null;
  private lz4: Lz4FrameReader | null = null;
  private hdr: Header | null = null;
  private trl: Trailer | null = null;
  private readonly hash = new Crc64();
  private dbsum: DatabaseChecksum | null = null;
  private pages = 0;
  private prevPgno = 0;
  private lock = 0;
  private readonly checkOrder: boolean;
  private readonly checkBounds: boolean;
  private readonly checkTrailing: boolean;

  constructor(
    private readonly source: LtxSource,
    opts: DecoderOptions = {},
  ) {
    const strict = opts.strict ?? false;
    this.checkOrder = opts.checkPageOrder ?? strict;
    this.checkBounds = opts.checkPageBounds ?? strict;
    this.checkTrailing = opts.checkTrailingData ?? strict;
  }

  /** The decoded header; throws before decodeHeader() succeeded. */
  get header(): Header {
    if (this.hdr === null) throw stateError('read the header', this.state);
    return this.hdr;
  }

  /** The verified trailer, once close() succeeded. */
  get trailer(): Trailer | null {
    return this.trl;
  }

  /** Pages returned so far. */
  get pageCount(): number {
    return this.pages;
  }

  /** Bytes consumed from the source so far. */
  get bytesRead(): number {
    return this.raw?.consumed ?? 0;
  }

  async decodeHeader(): Promise<Header> {
    if (this.state !== 'header') throw stateError('decode the header', this.state);
    return this.guard(async () => {
      this.src = await openSource(this.source);
      const src = this.src;
      this.raw = new ChunkReader(() => src.next(), 'LTX file');
      const b = await this.raw.read(HEADER_SIZE, 'header');
      const h = unmarshalHeader(b);
      this.hash.update(b);
      validateHeader(h);
      this.hdr = h;
      this.lock = lockPgno(h.pageSize);
      if (isSnapshot(h)) this.dbsum = new DatabaseChecksum(h.pageSize);
      if ((h.flags & HEADER_FLAG_COMPRESS_LZ4) !== 0) {
        this.lz4 = new Lz4FrameReader(this.raw);
        await this.lz4.readHeader();
        this.body = this.lz4.body;
      } else {
        this.body = this.raw;
      }
      this.state = 'page';
      return h;
    });
  }

  /**
   * The next page, or null after the last one. `data` is a view that is
   * valid only until the next call on this decoder: copy it to keep it.
   */
  async nextPage(): Promise<Page | null> {
    if (this.state === 'header') await this.decodeHeader();
    if (this.state === 'close') return null;
    if (this.state !== 'page') throw stateError('read a page', this.state);
    return this.guard(async () => {
      const body = this.body!;
      const h = this.hdr!;
      const ph = body.tryRead(PAGE_HEADER_SIZE) ?? (await body.read(PAGE_HEADER_SIZE, `page header #${this.pages}`));
      this.hash.update(ph);
      const pgno = ((ph[0]! << 24) | (ph[1]! << 16) | (ph[2]! << 8) | ph[3]!) >>> 0;
      if (pgno === 0) {
        if (this.lz4 !== null) await this.lz4.expectEnd();
        if (this.checkOrder && isSnapshot(h) && this.nextSnapshotPgno() <= h.commit) {
          throw pageError(`snapshot is incomplete: ends after page ${this.prevPgno}, commit is ${h.commit}`, this.prevPgno);
        }
        this.state = 'close';
        return null;
      }
      if (this.checkBounds) {
        if (pgno > h.commit) throw pageError(`page number ${pgno} out of bounds for commit size ${h.commit}`, pgno);
        if (pgno === this.lock) throw pageError(`file contains the lock page (pgno ${pgno})`, pgno);
      }
      if (this.checkOrder) {
        if (isSnapshot(h)) {
          const want = this.nextSnapshotPgno();
          if (pgno !== want) throw pageError(`nonsequential page numbers in snapshot: expected ${want}, got ${pgno}`, pgno);
        } else if (pgno <= this.prevPgno) {
          throw pageError(`out-of-order page numbers: ${this.prevPgno},${pgno}`, pgno);
        }
      }
      const data = body.tryRead(h.pageSize) ?? (await body.read(h.pageSize, `page ${pgno} data`));
      this.hash.update(data);
      this.dbsum?.addPage(pgno, data);
      this.prevPgno = pgno;
      this.pages++;
      return { pgno, data };
    });
  }

  /**
   * Reads and verifies the trailer: the file checksum always, the database
   * checksum for snapshots. Call after nextPage() returned null.
   */
  async close(): Promise<Trailer> {
    if (this.state === 'closed') return this.trl!;
    if (this.state !== 'close') throw stateError('close before the last page was read', this.state);
    return this.guard(async () => {
      const raw = this.raw!;
      const b = await raw.read(TRAILER_SIZE, 'trailer');
      const t = unmarshalTrailer(b);
      this.hash.update(b.subarray(0, 8));
      const computed = CHECKSUM_FLAG | this.hash.digest();
      if (computed !== t.fileChecksum) {
        throw new LtxError(
          'ERR_LTX_CHECKSUM_MISMATCH',
          `file checksum mismatch: trailer has ${hex64(t.fileChecksum)}, content hashes to ${hex64(computed)}`,
          { field: 'fileChecksum', value: hex64(t.fileChecksum) },
        );
      }
      if (this.dbsum !== null && this.dbsum.value !== t.postApplyChecksum) {
        throw new LtxError(
          'ERR_LTX_DB_CHECKSUM_MISMATCH',
          `snapshot post-apply checksum ${hex64(t.postApplyChecksum)} does not match its pages (${hex64(this.dbsum.value)})`,
          { field: 'postApplyChecksum', value: hex64(t.postApplyChecksum) },
        );
      }
      if (this.checkTrailing && !(await raw.atEnd())) {
        throw new LtxError('ERR_LTX_TRAILING_DATA', `data follows the LTX trailer at byte ${raw.consumed}`, {
          field: 'trailer',
          value: raw.consumed,
        });
      }
      this.trl = t;
      this.state = 'closed';
      await this.release();
      return t;
    });
  }

  /** Stops early and releases the source (closing it if the decoder opened it). */
  async destroy(): Promise<void> {
    if (this.state !== 'closed') this.state = 'failed';
    await this.release();
  }

  private nextSnapshotPgno(): number {
    const n = this.prevPgno + 1;
    return n === this.lock ? n + 1 : n;
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.state = 'failed';
      await this.release().catch(() => {});
      throw err;
    }
  }

  private async release(): Promise<void> {
    const src = this.src;
    this.src = null;
    if (src !== null) await src.close();
  }
}

export interface VerifyResult {
  header: Header;
  trailer: Trailer;
  pageCount: number;
  pgnos: number[];
  /** Bytes of the file up to and including the trailer. */
  size: number;
}

/** Fully decodes and verifies an LTX file or stream; throws a typed LtxError on the first problem. */
export async function verifyLtxFile(source: LtxSource, opts: DecoderOptions = {}): Promise<VerifyResult> {
  const dec = new LtxDecoder(source, opts);
  try {
    const header = await dec.decodeHeader();
    const pgnos: number[] = [];
    for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) pgnos.push(p.pgno);
    const trailer = await dec.close();
    return { header, trailer, pageCount: pgnos.length, pgnos, size: dec.bytesRead };
  } finally {
    await dec.destroy();
  }
}

/** Reads and validates just the header (no checksum verification). */
export async function readLtxHeader(source: LtxSource): Promise<Header> {
  const dec = new LtxDecoder(source);
  try {
    return await dec.decodeHeader();
  } finally {
    await dec.destroy();
  }
}
