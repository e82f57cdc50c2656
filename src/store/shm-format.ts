import { walChecksum, type WalChecksum } from './wal-format.js';

/**
 * The first 136 bytes of SQLite's wal-index (`-shm`): two copies of the
 * 48-byte WalIndexHdr, then WalCkptInfo (wal.c). They are in the host's
 * byte order; every machine we run on is little-endian. Readers that
 * mmap the file compare the two copies and their checksum before trusting
 * them, and a reader whose cached copy differs from the file throws its
 * page cache away: that is how a replica tells open connections that the
 * database changed under them.
 */
export const SHM_HEADER_SIZE = 136;
const WAL_INDEX_VERSION = 3007000;
const HDR_SIZE = 48;
const CKPT_INFO_OFFSET = 96;
const READMARK_NOT_USED = 0xffffffff;
const NREADER = 5;

export interface ShmHeader {
  change: number;
  bigEndianChecksums: boolean;
  pageSize: number;
  mxFrame: number;
  nPage: number;
  frameChecksum: WalChecksum;
  /** The WAL header's salts, as stored there (8 bytes). */
  salt: Buffer;
}

/**
 * The header a reader needs after the store changed the database file
 * itself (a replica's apply, an import): no frames in the WAL (mxFrame 0,
 * nothing backfilled), `nPage` pages, and a change counter readers have
 * not seen.
 */
export function encodeShmHeader(h: ShmHeader): Buffer {
  const b = Buffer.alloc(SHM_HEADER_SIZE);
  const hdr = b.subarray(0, HDR_SIZE);
  hdr.writeUInt32LE(WAL_INDEX_VERSION, 0);
  hdr.writeUInt32LE(h.change >>> 0, 8);
  hdr.writeUInt8(1, 12); // isInit
  hdr.writeUInt8(h.bigEndianChecksums ? 1 : 0, 13);
  // 65536 does not fit in 16 bits: SQLite stores it as 1.
  hdr.writeUInt16LE(h.pageSize === 65536 ? 1 : h.pageSize, 14);
  hdr.writeUInt32LE(h.mxFrame >>> 0, 16);
  hdr.writeUInt32LE(h.nPage >>> 0, 20);
  hdr.writeUInt32LE(h.frameChecksum[0] >>> 0, 24);
  hdr.writeUInt32LE(h.frameChecksum[1] >>> 0, 28);
  h.salt.copy(hdr, 32, 0, 8);
  const sum = walChecksum(false, hdr.subarray(0, 40));
  hdr.writeUInt32LE(sum[0], 40);
  hdr.writeUInt32LE(sum[1], 44);
  hdr.copy(b, HDR_SIZE);
  const ckpt = b.subarray(CKPT_INFO_OFFSET);
  ckpt.writeUInt32LE(0, 0); // nBackfill
  ckpt.writeUInt32LE(0, 4); // aReadMark[0]: readers of the database file alone
  for (let i = 1; i < NREADER; i++) ckpt.writeUInt32LE(READMARK_NOT_USED, 4 + 4 * i);
  // aLock[8] at 24..31 are SQLite's lock bytes: never data. nBackfillAttempted, notUsed0: 0.
  return b;
}

/** The header currently in a -shm file, or null when it is not a valid, initialized one. */
export function parseShmHeader(buf: Uint8Array): ShmHeader | null {
  if (buf.length < HDR_SIZE * 2) return null;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const a = b.subarray(0, HDR_SIZE);
  if (!a.equals(b.subarray(HDR_SIZE, 2 * HDR_SIZE))) return null;
  if (a.readUInt32LE(0) !== WAL_INDEX_VERSION || a.readUInt8(12) !== 1) return null;
  const sum = walChecksum(false, a.subarray(0, 40));
  if (sum[0] !== a.readUInt32LE(40) || sum[1] !== a.readUInt32LE(44)) return null;
  const raw = a.readUInt16LE(14);
  return {
    change: a.readUInt32LE(8),
    bigEndianChecksums: a.readUInt8(13) === 1,
    pageSize: raw === 1 ? 65536 : raw,
    mxFrame: a.readUInt32LE(16),
    nPage: a.readUInt32LE(20),
    frameChecksum: [a.readUInt32LE(24), a.readUInt32LE(28)],
    salt: Buffer.from(a.subarray(32, 40)),
  };
}
