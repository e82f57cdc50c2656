/**
 * SQLite's write-ahead log file format (sqlite.org/fileformat2.html §4):
 * a 32-byte header, then frames of a 24-byte header and one page. Every
 * frame carries a checksum chained from the header's through every frame
 * before it, and the salts of the header it belongs to; a frame whose
 * "database size after commit" is non-zero ends a transaction. This is
 * what SQLite's own recovery trusts, and so what the store trusts.
 */

export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
const WAL_MAGIC = 0x377f0682;
const WAL_VERSION = 3007000;

export interface WalHeader {
  /** Checksum words are big-endian (magic 0x377f0683) or little-endian (0x377f0682). */
  bigEndianChecksums: boolean;
  pageSize: number;
  checkpointSeq: number;
  /** Bytes 16..23 as stored: every frame of this WAL repeats them. */
  salt: Buffer;
  salt1: number;
  salt2: number;
  /** The checksum of the header, where the frames' chain starts. */
  checksum: WalChecksum;
}

export type WalChecksum = readonly [number, number];

export interface WalFrameHeader {
  pgno: number;
  /** Database size in pages after this frame's transaction; 0 for frames that do not end one. */
  commit: number;
  salt: Buffer;
  checksum: WalChecksum;
}

/**
 * SQLite's WAL checksum (walChecksumBytes): two 32-bit sums over 32-bit
 * words of `data` (length a multiple of 8), continuing from `from`.
 */
export function walChecksum(bigEndian: boolean, data: Uint8Array, from: WalChecksum = [0, 0]): WalChecksum {
  if (data.length % 8 !== 0) throw new RangeError(`WAL checksum input must be a multiple of 8 bytes, got ${data.length}`);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  let s1 = from[0];
  let s2 = from[1];
  const le = !bigEndian;
  for (let i = 0; i < data.length; i += 8) {
    s1 = (s1 + view.getUint32(i, le) + s2) >>> 0;
    s2 = (s2 + view.getUint32(i + 4, le) + s1) >>> 0;
  }
  return [s1, s2];
}

/** Parses and checks a WAL header; null when the bytes are not a valid one (SQLite then ignores the whole file). */
export function parseWalHeader(buf: Uint8Array): WalHeader | null {
  if (buf.length < WAL_HEADER_SIZE) return null;
  const b = Buffer.from(buf.buffer, buf.byteOffset, WAL_HEADER_SIZE);
  const magic = b.readUInt32BE(0);
  if ((magic & 0xfffffffe) !== WAL_MAGIC) return null;
  if (b.readUInt32BE(4) !== WAL_VERSION) return null;
  const pageSize = b.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const bigEndianChecksums = (magic & 1) === 1;
  const checksum = walChecksum(bigEndianChecksums, b.subarray(0, 24));
  if (checksum[0] !== b.readUInt32BE(24) || checksum[1] !== b.readUInt32BE(28)) return null;
  return {
    bigEndianChecksums,
    pageSize,
    checkpointSeq: b.readUInt32BE(12),
    salt: Buffer.from(b.subarray(16, 24)),
    salt1: b.readUInt32BE(16),
    salt2: b.readUInt32BE(20),
    checksum,
  };
}

export function parseFrameHeader(buf: Uint8Array): WalFrameHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, WAL_FRAME_HEADER_SIZE);
  return {
    pgno: b.readUInt32BE(0),
    commit: b.readUInt32BE(4),
    salt: Buffer.from(b.subarray(8, 16)),
    checksum: [b.readUInt32BE(16), b.readUInt32BE(20)],
  };
}

/**
 * The checksum a frame must carry to follow `prev` in a WAL with `header`,
 * or null when the frame is not valid there (wrong salts, page 0): SQLite's
 * walDecodeFrame.
 */
export function frameChecksum(header: WalHeader, prev: WalChecksum, frameHeader: Uint8Array, page: Uint8Array): WalChecksum | null {
  const h = Buffer.from(frameHeader.buffer, frameHeader.byteOffset, WAL_FRAME_HEADER_SIZE);
  if (h.readUInt32BE(0) === 0) return null;
  if (!h.subarray(8, 16).equals(header.salt)) return null;
  const first = walChecksum(header.bigEndianChecksums, h.subarray(0, 8), prev);
  return walChecksum(header.bigEndianChecksums, page, first);
}

/** Byte offset of frame `index` (0-based) in a WAL with `pageSize` pages. */
export function frameOffset(index: number, pageSize: number): number {
  return WAL_HEADER_SIZE + index * (WAL_FRAME_HEADER_SIZE + pageSize);
}

/** Encodes a WAL header (tests, and the store's own WAL rewrites). */
export function encodeWalHeader(opts: {
  bigEndianChecksums: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
}): Buffer {
  const b = Buffer.alloc(WAL_HEADER_SIZE);
  b.writeUInt32BE(WAL_MAGIC | (opts.bigEndianChecksums ? 1 : 0), 0);
  b.writeUInt32BE(WAL_VERSION, 4);
  b.writeUInt32BE(opts.pageSize, 8);
  b.writeUInt32BE(opts.checkpointSeq, 12);
  b.writeUInt32BE(opts.salt1, 16);
  b.writeUInt32BE(opts.salt2, 20);
  const c = walChecksum(opts.bigEndianChecksums, b.subarray(0, 24));
  b.writeUInt32BE(c[0], 24);
  b.writeUInt32BE(c[1], 28);
  return b;
}

/** Encodes a frame header chained from `prev` (tests build WAL files with it). */
export function encodeFrameHeader(
  header: WalHeader,
  prev: WalChecksum,
  pgno: number,
  commit: number,
  page: Uint8Array,
): { bytes: Buffer; checksum: WalChecksum } {
  const b = Buffer.alloc(WAL_FRAME_HEADER_SIZE);
  b.writeUInt32BE(pgno, 0);
  b.writeUInt32BE(commit, 4);
  header.salt.copy(b, 8);
  const c = walChecksum(header.bigEndianChecksums, page, walChecksum(header.bigEndianChecksums, b.subarray(0, 8), prev));
  b.writeUInt32BE(c[0], 16);
  b.writeUInt32BE(c[1], 20);
  return { bytes: b, checksum: c };
}
