/**
 * LTX v1 — the transaction file format of LiteFS (superfly/ltx v0.2.3 –
 * v0.3.14), byte-compatible with the Go implementation:
 * CRC-64/GO-ISO and the rolling page/database checksums, header and trailer
 * codecs with Go's validation rules, a streaming encoder and decoder
 * (optionally LZ4-framed page block), a compactor, an applier for plain
 * database files, and the string/JSON forms of TXIDs, checksums and
 * positions. This folder knows nothing about stores, HTTP or config.
 */
export { crc64, Crc64, crc64Engine, setCrc64Engine, type Crc64Engine } from './crc64.js';
export {
  CHECKSUM_FLAG,
  PENDING_BYTE,
  lockPgno,
  checksumPage,
  DatabaseChecksum,
  databaseChecksumFromPages,
  computePageChecksums,
  checksumDatabaseFile,
  readDatabaseGeometry,
  parseDatabaseHeader,
  type DatabaseGeometry,
  type FileRef,
} from './checksum.js';
export {
  MAGIC,
  HEADER_SIZE,
  TRAILER_SIZE,
  PAGE_HEADER_SIZE,
  HEADER_FLAG_COMPRESS_LZ4,
  HEADER_FLAG_MASK,
  MIN_PAGE_SIZE,
  MAX_PAGE_SIZE,
  isSnapshot,
  isValidPageSize,
  newHeader,
  type Header,
  type Trailer,
  type Page,
} from './types.js';
export { validateHeader, validateTrailer, marshalHeader, unmarshalHeader, marshalTrailer, unmarshalTrailer } from './header.js';
export { LtxError, isLtxError, hex64, type LtxErrorCode, type LtxErrorDetails } from './errors.js';
export {
  LtxEncoder,
  encodeLtxToBuffer,
  DEFAULT_ENCODER_BUFFER,
  DEFAULT_LZ4_CONCURRENCY,
  type LtxSink,
  type EncoderOptions,
} from './encoder.js';
export { LtxFileSink, writeLtxFile, syncDir } from './file-sink.js';
export { LtxDecoder, verifyLtxFile, readLtxHeader, type DecoderOptions, type VerifyResult } from './decoder.js';
export type { LtxSource } from './reader.js';
export { compactLtx, compactLtxFiles, type CompactOptions, type CompactResult } from './compactor.js';
export { applyLtxFiles, type ApplyOptions, type ApplyResult } from './apply.js';
export {
  formatTXID,
  parseTXID,
  formatChecksum,
  parseChecksum,
  ltxFilename,
  parseLtxFilename,
  formatPos,
  parsePos,
  isZeroPos,
  txidToJSON,
  txidFromJSON,
  checksumToJSON,
  checksumFromJSON,
  posToJSON,
  posFromJSON,
  type Pos,
  type PosJSON,
} from './names.js';
export { xxh32, Xxh32 } from './xxh32.js';
