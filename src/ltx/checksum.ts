/**
 * The rolling database checksum LiteFS keeps alongside every database:
 * page checksum = FLAG | crc64(u32be(pgno) ‖ page); database checksum =
 * FLAG | XOR of the page checksums of pages 1..commit, the lock page
 * excluded. XOR makes it order-free, so it can be updated page by page and
 * computed in any order.
 */
import { open } from 'node:fs/promises';
import { pageChecksumInto } from './crc64.js';
import { checksumPageRange, type FileRef } from './page-range.js';
import { LtxError } from './errors.js';

/** OR-ed into every checksum so a valid checksum is never 0 (0 means "absent"). */
export const CHECKSUM_FLAG = 1n << 63n;

/** SQLite's PENDING_BYTE: the page holding it is never written by SQLite. */
export const PENDING_BYTE = 0x40000000;

/** Page number of the lock page (the one holding PENDING_BYTE) for a page size. */
export function lockPgno(pageSize: number): number {
  return Math.floor(PENDING_BYTE / pageSize) + 1;
}

const one = new Uint32Array(2);

function halvesToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** FLAG | crc64(u32be(pgno) ‖ data). */
export function checksumPage(pgno: number, data: Uint8Array): bigint {
  pageChecksumInto(pgno, data, one, 0);
  return halvesToBigInt(one[0]!, one[1]!);
}

/**
 * Accumulates a database checksum page by page without BigInt per page.
 * Pages equal to the lock page are ignored, as LiteFS does.
 */
export class DatabaseChecksum {
  private lo = 0;
  private hi = 0;
  private readonly lock: number;

  constructor(pageSize: number) {
    this.lock = lockPgno(pageSize);
  }

  addPage(pgno: number, data: Uint8Array): void {
    if (pgno === this.lock) return;
    pageChecksumInto(pgno, data, one, 0);
    this.lo ^= one[0]!;
    this.hi ^= one[1]!;
  }

  /** XORs in a page checksum computed elsewhere (0 = absent, no effect). */
  addChecksum(c: bigint): void {
    this.lo ^= Number(c & 0xffffffffn);
    this.hi ^= Number((c >> 32n) & 0xffffffffn);
  }

  /** FLAG | XOR so far; FLAG alone for an empty database. */
  get value(): bigint {
    return halvesToBigInt(this.lo, this.hi | 0x80000000);
  }
}

/**
 * FLAG | XOR of checksums[0 .. pageCount-1]. Entries for the lock page are
 * expected to be 0 (computePageChecksums leaves them so).
 */
export function databaseChecksumFromPages(checksums: BigUint64Array, pageCount: number): bigint {
  if (pageCount > checksums.length) {
    throw new RangeError(`page count ${pageCount} exceeds checksum array length ${checksums.length}`);
  }
  const w = new Uint32Array(checksums.buffer, checksums.byteOffset, checksums.length * 2);
  let lo = 0;
  let hi = 0;
  const end = pageCount * 2;
  for (let i = 0; i < end; i += 2) {
    lo ^= w[i]!;
    hi ^= w[i + 1]!;
  }
  return halvesToBigInt(lo, hi | 0x80000000);
}

export type { FileRef } from './page-range.js';

/**
 * Page checksums of pages 1..pageCount of a database file, at index pgno-1.
 * The lock page's entry is 0, and so are entries of pages at or past EOF
 * (a partial last page counts as absent). Reads in 4 MiB chunks with the
 * next read in flight while the current chunk is hashed; on the calling
 * thread, since hashing (~4 GB/s) keeps up with the page cache and worker
 * threads measured no faster on this project's machines.
 */
export async function computePageChecksums(file: FileRef, pageSize: number, pageCount: number): Promise<BigUint64Array> {
  if (!Number.isInteger(pageSize) || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new LtxError('ERR_LTX_PAGE_INVALID', `invalid page size ${pageSize}`, { field: 'pageSize', value: pageSize });
  }
  if (!Number.isInteger(pageCount) || pageCount < 0 || pageCount > 0xffffffff) {
    throw new LtxError('ERR_LTX_PAGE_INVALID', `invalid page count ${pageCount}`, { field: 'pageCount', value: pageCount });
  }
  const out = new BigUint64Array(pageCount);
  if (pageCount === 0) return out;
  await checksumPageRange(file, pageSize, 1, pageCount, new Uint32Array(out.buffer), 0);
  const lock = lockPgno(pageSize);
  if (lock <= pageCount) out[lock - 1] = 0n;
  return out;
}

/** Page size and page count of a SQLite database file, as SQLite itself would see them. */
export interface DatabaseGeometry {
  pageSize: number;
  pageCount: number;
  fileSize: number;
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * Reads page size and page count from a SQLite database header. An empty
 * file is a database of 0 pages (page size 0). The in-header page count is
 * used when SQLite would trust it (non-zero and its version-valid-for equals
 * the change counter); otherwise the file size decides.
 */
export function parseDatabaseHeader(header: Uint8Array, fileSize: number, what = 'database'): DatabaseGeometry {
  if (fileSize === 0) return { pageSize: 0, pageCount: 0, fileSize };
  if (header.length < 100 || fileSize < 100) {
    throw new LtxError('ERR_LTX_DB_INVALID', `${what}: file of ${fileSize} bytes is too short for a SQLite header`, {
      field: 'fileSize',
      value: fileSize,
    });
  }
  for (let i = 0; i < 16; i++) {
    if (header[i] !== SQLITE_MAGIC.charCodeAt(i)) {
      throw new LtxError('ERR_LTX_DB_INVALID', `${what}: not a SQLite database (bad header magic)`, { field: 'magic' });
    }
  }
  const dv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const raw = dv.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new LtxError('ERR_LTX_DB_INVALID', `${what}: invalid page size ${raw} in SQLite header`, {
      field: 'pageSize',
      value: raw,
    });
  }
  const inHeader = dv.getUint32(28);
  const trusted = inHeader !== 0 && dv.getUint32(24) === dv.getUint32(92);
  const filePages = Math.floor(fileSize / pageSize);
  const pageCount = trusted ? inHeader : filePages;
  if (pageCount > filePages) {
    throw new LtxError(
      'ERR_LTX_DB_INVALID',
      `${what}: header says ${pageCount} pages but the file holds only ${filePages} of ${pageSize} bytes`,
      { field: 'pageCount', value: pageCount },
    );
  }
  return { pageSize, pageCount, fileSize };
}

/** Geometry of a database file (see parseDatabaseHeader). */
export async function readDatabaseGeometry(path: string): Promise<DatabaseGeometry> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const header = new Uint8Array(100);
    const { bytesRead } = await fh.read(header, 0, 100, 0);
    return parseDatabaseHeader(header.subarray(0, bytesRead), size, path);
  } finally {
    await fh.close();
  }
}

/** The rolling checksum of a whole database file; FLAG for an empty file. */
export async function checksumDatabaseFile(path: string): Promise<bigint> {
  const geo = await readDatabaseGeometry(path);
  if (geo.pageCount === 0) return CHECKSUM_FLAG;
  const sums = await computePageChecksums(path, geo.pageSize, geo.pageCount);
  return databaseChecksumFromPages(sums, geo.pageCount);
}
