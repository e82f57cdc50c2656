/**
 * Applies a chain of LTX files to a plain SQLite database file (what
 * `litefs ltx apply` does). Nothing is written until every file has been
 * fully verified and the whole chain has been replayed on page checksums in
 * memory: the first file's PreApply must equal the database's current
 * checksum (unless it is a snapshot), each next file must continue the
 * previous one (MinTXID = previous MaxTXID + 1, PreApply = previous
 * PostApply), and each file's PostApply must equal the checksum its pages
 * produce. Only then are pages written and the file truncated to each
 * commit; finally the database checksum is recomputed from disk.
 */
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { CHECKSUM_FLAG, computePageChecksums, databaseChecksumFromPages, lockPgno, readDatabaseGeometry } from './checksum.js';
import { pageChecksumInto } from './crc64.js';
import { LtxDecoder } from './decoder.js';
import { LtxError, hex64 } from './errors.js';
import type { Pos } from './names.js';
import { isSnapshot, type Header, type Trailer } from './types.js';
import { isErrno } from '../internal/index.js';

export interface ApplyResult {
  /** Position of the database after the last file. */
  pos: Pos;
  pageSize: number;
  /** Database size in pages after the last file. */
  commit: number;
  files: number;
  pagesWritten: number;
}

export interface ApplyOptions {
  /** fsync the database after writing (default true). */
  fsync?: boolean;
}

/** Per-page checksums of the database as the chain would leave it. */
class SimulatedDb {
  private sums: Uint32Array;
  private lo = 0;
  private hi = 0;
  commit: number;
  private readonly lock: number;

  constructor(
    readonly pageSize: number,
    initial: BigUint64Array | null,
    pageCount: number,
  ) {
    this.lock = lockPgno(pageSize);
    this.sums = new Uint32Array(Math.max(16, pageCount * 2));
    if (initial !== null) {
      this.sums.set(new Uint32Array(initial.buffer, initial.byteOffset, pageCount * 2));
      for (let i = 0; i < pageCount * 2; i += 2) {
        this.lo ^= this.sums[i]!;
        this.hi ^= this.sums[i + 1]!;
      }
    }
    this.commit = pageCount;
  }

  get checksum(): bigint {
    return (BigInt((this.hi | 0x80000000) >>> 0) << 32n) | BigInt(this.lo >>> 0);
  }

  setPage(pgno: number, lo: number, hi: number): void {
    const i = 2 * (pgno - 1);
    if (i + 2 > this.sums.length) {
      const grown = new Uint32Array(Math.max(i + 2, this.sums.length * 2));
      grown.set(this.sums);
      this.sums = grown;
    }
    this.lo ^= this.sums[i]! ^ lo;
    this.hi ^= this.sums[i + 1]! ^ hi;
    this.sums[i] = lo;
    this.sums[i + 1] = hi;
  }

  /** Sets the size; growth must be covered by pages the file carried. */
  resize(commit: number, what: string): void {
    if (commit < this.commit) {
      for (let p = commit + 1; p <= this.commit; p++) {
        const i = 2 * (p - 1);
        if (i >= this.sums.length) break;
        this.lo ^= this.sums[i]!;
        this.hi ^= this.sums[i + 1]!;
        this.sums[i] = 0;
        this.sums[i + 1] = 0;
      }
    } else {
      for (let p = this.commit + 1; p <= commit; p++) {
        const i = 2 * (p - 1);
        if (p !== this.lock && (i >= this.sums.length || (this.sums[i] === 0 && this.sums[i + 1] === 0))) {
          throw new LtxError(
            'ERR_LTX_PAGE_INVALID',
            `${what} grows the database from ${this.commit} to ${commit} pages but does not contain page ${p}`,
            { field: 'pgno', value: p },
          );
        }
      }
    }
    this.commit = commit;
  }
}

interface Planned {
  path: string;
  header: Header;
  trailer: Trailer;
}

async function databaseSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

async function initialState(dbPath: string, first: Header, firstPath: string): Promise<SimulatedDb> {
  if (isSnapshot(first)) return new SimulatedDb(first.pageSize, null, 0);
  const size = await databaseSize(dbPath);
  const geo = size === null || size === 0 ? null : await readDatabaseGeometry(dbPath);
  if (geo === null || geo.pageCount === 0) {
    const sim = new SimulatedDb(first.pageSize, null, 0);
    if (first.preApplyChecksum !== CHECKSUM_FLAG) {
      throw new LtxError(
        'ERR_LTX_DB_CHECKSUM_MISMATCH',
        `${firstPath}: pre-apply checksum ${hex64(first.preApplyChecksum)} does not match the empty database (${hex64(CHECKSUM_FLAG)})`,
        { field: 'preApplyChecksum', value: hex64(first.preApplyChecksum) },
      );
    }
    return sim;
  }
  if (geo.pageSize !== first.pageSize) {
    throw new LtxError(
      'ERR_LTX_PAGE_SIZE_MISMATCH',
      `${firstPath}: page size ${first.pageSize} differs from the database's ${geo.pageSize}`,
      { field: 'pageSize', value: first.pageSize },
    );
  }
  const sums = await computePageChecksums(dbPath, geo.pageSize, geo.pageCount);
  const sim = new SimulatedDb(geo.pageSize, sums, geo.pageCount);
  if (sim.checksum !== first.preApplyChecksum) {
    throw new LtxError(
      'ERR_LTX_DB_CHECKSUM_MISMATCH',
      `${firstPath}: pre-apply checksum ${hex64(first.preApplyChecksum)} does not match the database checksum ${hex64(sim.checksum)}`,
      { field: 'preApplyChecksum', value: hex64(first.preApplyChecksum) },
    );
  }
  return sim;
}

/** Verifies the chain and replays it on checksums; reads only. */
async function plan(dbPath: string, ltxPaths: string[]): Promise<{ plans: Planned[]; sim: SimulatedDb }> {
  const plans: Planned[] = [];
  let sim: SimulatedDb | null = null;
  const halves = new Uint32Array(2);
  for (const path of ltxPaths) {
    const dec = new LtxDecoder(path, { strict: true });
    try {
      const header = await dec.decodeHeader();
      const prev = plans[plans.length - 1];
      if (prev === undefined) {
        sim = await initialState(dbPath, header, path);
      } else {
        if (header.pageSize !== prev.header.pageSize) {
          throw new LtxError(
            'ERR_LTX_PAGE_SIZE_MISMATCH',
            `${path}: page size ${header.pageSize} differs from ${prev.path}'s ${prev.header.pageSize}`,
            { field: 'pageSize', value: header.pageSize },
          );
        }
        if (header.minTXID !== prev.header.maxTXID + 1n) {
          throw new LtxError(
            'ERR_LTX_NOT_CONTIGUOUS',
            `${path}: min TXID ${hex64(header.minTXID)} does not follow ${prev.path}'s max TXID ${hex64(prev.header.maxTXID)}`,
            { field: 'minTXID', value: hex64(header.minTXID) },
          );
        }
        if (header.preApplyChecksum !== prev.trailer.postApplyChecksum) {
          throw new LtxError(
            'ERR_LTX_DB_CHECKSUM_MISMATCH',
            `${path}: pre-apply checksum ${hex64(header.preApplyChecksum)} does not match ${prev.path}'s post-apply checksum ${hex64(prev.trailer.postApplyChecksum)}`,
            { field: 'preApplyChecksum', value: hex64(header.preApplyChecksum) },
          );
        }
      }
      const s = sim!;
      if (isSnapshot(header)) s.resize(0, path);
      for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) {
        pageChecksumInto(p.pgno, p.data, halves, 0);
        s.setPage(p.pgno, halves[0]!, halves[1]!);
      }
      const trailer = await dec.close();
      s.resize(header.commit, path);
      if (s.checksum !== trailer.postApplyChecksum) {
        throw new LtxError(
          'ERR_LTX_DB_CHECKSUM_MISMATCH',
          `${path}: post-apply checksum ${hex64(trailer.postApplyChecksum)} does not match the database it produces (${hex64(s.checksum)})`,
          { field: 'postApplyChecksum', value: hex64(trailer.postApplyChecksum) },
        );
      }
      plans.push({ path, header, trailer });
    } finally {
      await dec.destroy();
    }
  }
  return { plans, sim: sim! };
}

/** Gathers runs of consecutive pages into large positional writes. */
class PageWriter {
  private readonly buf: Uint8Array;
  private start = 0;
  private count = 0;
  written = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly pageSize: number,
  ) {
    this.buf = new Uint8Array(Math.max(1, Math.floor((1 << 20) / pageSize)) * pageSize);
  }

  async add(pgno: number, data: Uint8Array): Promise<void> {
    const cap = this.buf.length / this.pageSize;
    if (this.count > 0 && (pgno !== this.start + this.count || this.count === cap)) await this.flush();
    if (this.count === 0) this.start = pgno;
    this.buf.set(data, this.count * this.pageSize);
    this.count++;
    this.written++;
  }

  async flush(): Promise<void> {
    if (this.count === 0) return;
    const len = this.count * this.pageSize;
    let off = 0;
    while (off < len) {
      const { bytesWritten } = await this.fh.write(this.buf, off, len - off, (this.start - 1) * this.pageSize + off);
      off += bytesWritten;
    }
    this.count = 0;
  }
}

export async function applyLtxFiles(dbPath: string, ltxPaths: string[], opts: ApplyOptions = {}): Promise<ApplyResult> {
  if (ltxPaths.length === 0) throw new LtxError('ERR_LTX_STATE', 'no LTX files to apply');
  const { plans, sim } = await plan(dbPath, ltxPaths);

  const ps = sim.pageSize;
  const fh = await open(dbPath, constants.O_RDWR | constants.O_CREAT, 0o644);
  let pagesWritten = 0;
  try {
    // A snapshot replaces the whole file; starting empty also zeroes the lock page.
    if (isSnapshot(plans[0]!.header)) await fh.truncate(0);
    for (const pl of plans) {
      const writer = new PageWriter(fh, ps);
      const dec = new LtxDecoder(pl.path, { strict: true });
      try {
        await dec.decodeHeader();
        for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) await writer.add(p.pgno, p.data);
        await writer.flush();
        await dec.close();
      } finally {
        await dec.destroy();
      }
      await fh.truncate(pl.header.commit * ps);
      pagesWritten += writer.written;
    }
    if (opts.fsync ?? true) await fh.sync();
  } finally {
    await fh.close();
  }

  const last = plans[plans.length - 1]!;
  const commit = last.header.commit;
  const sums = await computePageChecksums(dbPath, ps, commit);
  const actual = databaseChecksumFromPages(sums, commit);
  if (actual !== last.trailer.postApplyChecksum) {
    throw new LtxError(
      'ERR_LTX_DB_CHECKSUM_MISMATCH',
      `database checksum after apply is ${hex64(actual)}, expected ${hex64(last.trailer.postApplyChecksum)}`,
      { field: 'postApplyChecksum', value: hex64(actual) },
    );
  }
  return {
    pos: { txid: last.header.maxTXID, postApplyChecksum: last.trailer.postApplyChecksum },
    pageSize: ps,
    commit,
    files: plans.length,
    pagesWritten,
  };
}
