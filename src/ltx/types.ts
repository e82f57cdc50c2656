/** LTX v1 (the LiteFS-era format: ltx v0.2.3 – v0.3.14) sizes, flags and records. */

export const MAGIC = 'LTX1';
export const HEADER_SIZE = 100;
export const TRAILER_SIZE = 16;
export const PAGE_HEADER_SIZE = 4;
/** Flag bit: the page block (pages + zero terminator) is one LZ4 frame. */
export const HEADER_FLAG_COMPRESS_LZ4 = 0x1;
/** Every flag bit a v1 reader knows; any other bit is rejected. */
export const HEADER_FLAG_MASK = 0x1;
export const MIN_PAGE_SIZE = 512;
export const MAX_PAGE_SIZE = 65536;

/**
 * The 100-byte header, all fields big-endian on disk. 64-bit fields are
 * bigint; signed ones (timestamp, walOffset, walSize) hold their signed
 * value, so a negative WAL offset read from a corrupt file stays visible to
 * validation instead of wrapping to a huge positive number.
 */
export interface Header {
  flags: number;
  pageSize: number;
  /** Database size in pages after applying the file; 0 means "deleted". */
  commit: number;
  minTXID: bigint;
  maxTXID: bigint;
  /** Milliseconds since the Unix epoch (i64). */
  timestamp: bigint;
  preApplyChecksum: bigint;
  walOffset: bigint;
  walSize: bigint;
  walSalt1: number;
  walSalt2: number;
  nodeID: bigint;
}

export interface Trailer {
  postApplyChecksum: bigint;
  fileChecksum: bigint;
}

export interface Page {
  pgno: number;
  data: Uint8Array;
}

/** A file whose MinTXID is 1 holds the whole database. */
export function isSnapshot(h: Pick<Header, 'minTXID'>): boolean {
  return h.minTXID === 1n;
}

export function isValidPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_PAGE_SIZE && n <= MAX_PAGE_SIZE && (n & (n - 1)) === 0;
}

/** A header with every optional field zero, for building files in code. */
export function newHeader(fields: Partial<Header> & Pick<Header, 'pageSize' | 'commit' | 'minTXID' | 'maxTXID'>): Header {
  return {
    flags: 0,
    timestamp: 0n,
    preApplyChecksum: 0n,
    walOffset: 0n,
    walSize: 0n,
    walSalt1: 0,
    walSalt2: 0,
    nodeID: 0n,
    ...fields,
  };
}
