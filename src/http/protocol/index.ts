// The LiteFS v0.5 `/stream` wire format: position maps, frames, chunking.
export { ByteReader, type ByteSource } from './byte-reader.js';
export {
  CHUNK_TERMINATOR,
  ChunkEncoder,
  DEFAULT_CHUNK_BATCH_BYTES,
  MAX_CHUNK_SIZE,
  chunkedSize,
  encodeChunks,
  type ChunkEncoderOptions,
} from './chunk.js';
export { MAX_DATABASE_NAME_BYTES, decodeDatabaseName, encodeDatabaseName, validateDatabaseName } from './db-name.js';
export { StreamError, isStreamError, type StreamErrorCode } from './errors.js';
export { FrameReader, LtxFrameBody, type Frame, type FrameReaderOptions, type LtxFrame } from './frame-reader.js';
export {
  FrameType,
  MAX_LEASE_ID_BYTES,
  encodeControlFrame,
  encodeLtxFrame,
  encodeLtxFrameHeader,
  type ControlFrame,
  type FrameTypeCode,
  type LtxFrameOptions,
} from './frames.js';
export {
  DEFAULT_MAX_POS_MAP_ENTRIES,
  decodePosMap,
  encodePosMap,
  maxPosMapBytes,
  readPosMap,
  type PosMap,
  type PosMapLimits,
  type StreamPos,
} from './pos-map.js';
