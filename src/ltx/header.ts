/**
 * Header and trailer byte layout and the validation rules of ltx v0.3.14
 * (`Header.Validate`, `Trailer.Validate`): we reject exactly what Go rejects
 * and accept what it accepts (non-zero reserved bytes, Commit 0, any
 * timestamp or node ID).
 */
import { CHECKSUM_FLAG } from './checksum.js';
import { LtxError, hex64 } from './errors.js';
import { HEADER_FLAG_MASK, HEADER_SIZE, MAGIC, TRAILER_SIZE, isSnapshot, isValidPageSize, type Header, type Trailer } from './types.js';

const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function invalid(field: string, value: string | number | bigint, why: string): LtxError {
  return new LtxError('ERR_LTX_HEADER_INVALID', `invalid LTX header: ${field} ${why} (${String(value)})`, {
    field,
    value,
  });
}

/** Throws ERR_LTX_HEADER_INVALID naming the first field that breaks a v1 rule. */
export function validateHeader(h: Header): void {
  // Range checks first: these values cannot come out of unmarshalHeader
  // wrong, but a caller building a Header in code can pass anything.
  const u32 = (field: string, v: number): void => {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw invalid(field, v, 'is not a u32');
  };
  const u64 = (field: string, v: bigint): void => {
    if (v < 0n || v > U64_MAX) throw invalid(field, v, 'is not a u64');
  };
  const i64 = (field: string, v: bigint): void => {
    if (v < I64_MIN || v > I64_MAX) throw invalid(field, v, 'is not an i64');
  };
  u32('flags', h.flags);
  u32('pageSize', h.pageSize);
  u32('commit', h.commit);
  u64('minTXID', h.minTXID);
  u64('maxTXID', h.maxTXID);
  i64('timestamp', h.timestamp);
  u64('preApplyChecksum', h.preApplyChecksum);
  i64('walOffset', h.walOffset);
  i64('walSize', h.walSize);
  u32('walSalt1', h.walSalt1);
  u32('walSalt2', h.walSalt2);
  u64('nodeID', h.nodeID);

  if ((h.flags & ~HEADER_FLAG_MASK) !== 0) {
    throw invalid('flags', `0x${(h.flags >>> 0).toString(16).padStart(8, '0')}`, 'has unknown bits');
  }
  if (!isValidPageSize(h.pageSize)) throw invalid('pageSize', h.pageSize, 'is not a power of two in 512..65536');
  if (h.minTXID === 0n) throw invalid('minTXID', h.minTXID, 'must be non-zero');
  if (h.maxTXID === 0n) throw invalid('maxTXID', h.maxTXID, 'must be non-zero');
  if (h.minTXID > h.maxTXID) {
    throw invalid('maxTXID', `${h.minTXID}..${h.maxTXID}`, 'is below minTXID');
  }
  if (h.walOffset < 0n) throw invalid('walOffset', h.walOffset, 'is negative');
  if (h.walSize < 0n) throw invalid('walSize', h.walSize, 'is negative');
  if (h.walSalt1 !== 0 || h.walSalt2 !== 0) {
    if (h.walOffset === 0n) throw invalid('walOffset', h.walOffset, 'must be non-zero when a WAL salt is set');
    if (h.walSize === 0n) throw invalid('walSize', h.walSize, 'must be non-zero when a WAL salt is set');
  }
  if (h.walOffset !== 0n && h.walSize === 0n) throw invalid('walSize', h.walSize, 'must be non-zero when walOffset is set');
  if (h.walOffset === 0n && h.walSize !== 0n) throw invalid('walOffset', h.walOffset, 'must be non-zero when walSize is set');
  if (isSnapshot(h)) {
    if (h.preApplyChecksum !== 0n) {
      throw invalid('preApplyChecksum', hex64(h.preApplyChecksum), 'must be zero in a snapshot');
    }
  } else {
    if (h.preApplyChecksum === 0n) throw invalid('preApplyChecksum', hex64(0n), 'is required in a non-snapshot file');
    if ((h.preApplyChecksum & CHECKSUM_FLAG) === 0n) {
      throw invalid('preApplyChecksum', hex64(h.preApplyChecksum), 'lacks the checksum flag bit');
    }
  }
}

/** The 100-byte encoding; reserved bytes 80..99 are zero. Does not validate. */
export function marshalHeader(h: Header, out: Uint8Array = new Uint8Array(HEADER_SIZE)): Uint8Array {
  if (out.length < HEADER_SIZE) throw new RangeError(`header buffer of ${out.length} bytes, need ${HEADER_SIZE}`);
  out.fill(0, 0, HEADER_SIZE);
  for (let i = 0; i < 4; i++) out[i] = MAGIC.charCodeAt(i);
  const dv = new DataView(out.buffer, out.byteOffset, HEADER_SIZE);
  dv.setUint32(4, h.flags >>> 0);
  dv.setUint32(8, h.pageSize >>> 0);
  dv.setUint32(12, h.commit >>> 0);
  dv.setBigUint64(16, BigInt.asUintN(64, h.minTXID));
  dv.setBigUint64(24, BigInt.asUintN(64, h.maxTXID));
  dv.setBigUint64(32, BigInt.asUintN(64, h.timestamp));
  dv.setBigUint64(40, BigInt.asUintN(64, h.preApplyChecksum));
  dv.setBigUint64(48, BigInt.asUintN(64, h.walOffset));
  dv.setBigUint64(56, BigInt.asUintN(64, h.walSize));
  dv.setUint32(64, h.walSalt1 >>> 0);
  dv.setUint32(68, h.walSalt2 >>> 0);
  dv.setBigUint64(72, BigInt.asUintN(64, h.nodeID));
  return out;
}

/**
 * Decodes the first 100 bytes of `b` (a longer buffer is fine). Throws
 * ERR_LTX_TRUNCATED for fewer than 100 bytes and ERR_LTX_BAD_MAGIC for a
 * wrong magic. Does not validate (call validateHeader), like Go.
 */
export function unmarshalHeader(b: Uint8Array): Header {
  if (b.length < HEADER_SIZE) {
    throw new LtxError('ERR_LTX_TRUNCATED', `LTX header truncated: ${b.length} of ${HEADER_SIZE} bytes`, {
      field: 'header',
      value: b.length,
    });
  }
  for (let i = 0; i < 4; i++) {
    if (b[i] !== MAGIC.charCodeAt(i)) {
      const got = Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join('');
      throw new LtxError('ERR_LTX_BAD_MAGIC', `not an LTX file: magic ${got}, expected 4c545831 ("LTX1")`, {
        field: 'magic',
        value: got,
      });
    }
  }
  const dv = new DataView(b.buffer, b.byteOffset, HEADER_SIZE);
  return {
    flags: dv.getUint32(4),
    pageSize: dv.getUint32(8),
    commit: dv.getUint32(12),
    minTXID: dv.getBigUint64(16),
    maxTXID: dv.getBigUint64(24),
    timestamp: dv.getBigInt64(32),
    preApplyChecksum: dv.getBigUint64(40),
    walOffset: dv.getBigInt64(48),
    walSize: dv.getBigInt64(56),
    walSalt1: dv.getUint32(64),
    walSalt2: dv.getUint32(68),
    nodeID: dv.getBigUint64(72),
  };
}

export function marshalTrailer(t: Trailer, out: Uint8Array = new Uint8Array(TRAILER_SIZE)): Uint8Array {
  if (out.length < TRAILER_SIZE) throw new RangeError(`trailer buffer of ${out.length} bytes, need ${TRAILER_SIZE}`);
  const dv = new DataView(out.buffer, out.byteOffset, TRAILER_SIZE);
  dv.setBigUint64(0, BigInt.asUintN(64, t.postApplyChecksum));
  dv.setBigUint64(8, BigInt.asUintN(64, t.fileChecksum));
  return out;
}

export function unmarshalTrailer(b: Uint8Array): Trailer {
  if (b.length < TRAILER_SIZE) {
    throw new LtxError('ERR_LTX_TRUNCATED', `LTX trailer truncated: ${b.length} of ${TRAILER_SIZE} bytes`, {
      field: 'trailer',
      value: b.length,
    });
  }
  const dv = new DataView(b.buffer, b.byteOffset, TRAILER_SIZE);
  return { postApplyChecksum: dv.getBigUint64(0), fileChecksum: dv.getBigUint64(8) };
}

function trailerInvalid(field: string, value: bigint, why: string): LtxError {
  return new LtxError('ERR_LTX_TRAILER_INVALID', `invalid LTX trailer: ${field} ${why} (${hex64(value)})`, {
    field,
    value: hex64(value),
  });
}

/**
 * The encoder's trailer rules (ltx ≥ v0.3.7): both checksums non-zero with
 * the flag bit; a deletion file (commit 0) must carry exactly FLAG, the
 * checksum of an empty database. The Go decoder does not apply these.
 */
export function validateTrailer(t: Trailer, commit: number): void {
  if (t.postApplyChecksum === 0n) throw trailerInvalid('postApplyChecksum', 0n, 'is required');
  if ((t.postApplyChecksum & CHECKSUM_FLAG) === 0n) {
    throw trailerInvalid('postApplyChecksum', t.postApplyChecksum, 'lacks the checksum flag bit');
  }
  if (t.fileChecksum === 0n) throw trailerInvalid('fileChecksum', 0n, 'is required');
  if ((t.fileChecksum & CHECKSUM_FLAG) === 0n) {
    throw trailerInvalid('fileChecksum', t.fileChecksum, 'lacks the checksum flag bit');
  }
  if (commit === 0 && t.postApplyChecksum !== CHECKSUM_FLAG) {
    throw trailerInvalid('postApplyChecksum', t.postApplyChecksum, 'must be 8000000000000000 for a deletion (commit 0)');
  }
}
