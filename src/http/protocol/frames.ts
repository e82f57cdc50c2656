import { ChunkEncoder, type ChunkEncoderOptions } from './chunk.js';
import { encodeDatabaseName } from './db-name.js';
import { StreamError } from './errors.js';

/** Wire values of the `u32 BE` frame type (LiteFS v0.5). */
export const FrameType = {
  LTX: 1,
  READY: 2,
  END: 3,
  DROPDB: 4,
  HANDOFF: 5,
  HWM: 6,
  HEARTBEAT: 7,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

/**
 * Default cap on a HANDOFF lease ID. Consul session IDs are 36-byte UUIDs;
 * the cap only stops a garbage length from allocating gigabytes.
 */
export const MAX_LEASE_ID_BYTES = 1024;

/** Every frame except LTX: they carry no body. */
export type ControlFrame =
  /** Initial catch-up done; the replica may mark itself ready. */
  | { type: 'ready' }
  /** Clean server-side end of the stream. */
  | { type: 'end' }
  /** Deprecated deletion notice (LiteFS v0.4); clients log and ignore it. */
  | { type: 'dropdb'; name: string }
  /** The primary hands its lease to this replica. */
  | { type: 'handoff'; leaseID: string }
  /** The primary's high-water mark for a database. */
  | { type: 'hwm'; name: string; txid: bigint }
  /** Primary liveness; milliseconds since the Unix epoch (i64). */
  | { type: 'heartbeat'; timestamp: bigint };

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function typeOnly(code: FrameTypeCode): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(code, 0);
  return b;
}

function typeAndString(code: FrameTypeCode, bytes: Buffer): Buffer {
  const b = Buffer.allocUnsafe(8 + bytes.length);
  b.writeUInt32BE(code, 0);
  b.writeUInt32BE(bytes.length, 4);
  bytes.copy(b, 8);
  return b;
}

function checkRange(v: bigint, lo: bigint, hi: bigint, field: string): void {
  if (v < lo || v > hi) throw new StreamError('ERR_STREAM_BAD_VALUE', `${field} ${v} is outside ${lo}..${hi}`);
}

/** Encodes a body-less frame. */
export function encodeControlFrame(frame: ControlFrame): Buffer {
  switch (frame.type) {
    case 'ready':
      return typeOnly(FrameType.READY);
    case 'end':
      return typeOnly(FrameType.END);
    case 'dropdb':
      return typeAndString(FrameType.DROPDB, encodeDatabaseName(frame.name));
    case 'handoff': {
      const id = Buffer.from(frame.leaseID, 'utf8');
      if (id.length > MAX_LEASE_ID_BYTES) {
        throw new StreamError('ERR_STREAM_FIELD_TOO_LONG', `lease ID is ${id.length} bytes, limit ${MAX_LEASE_ID_BYTES}`);
      }
      return typeAndString(FrameType.HANDOFF, id);
    }
    case 'hwm': {
      checkRange(frame.txid, 0n, U64_MAX, 'HWM TXID');
      const name = encodeDatabaseName(frame.name);
      const b = Buffer.allocUnsafe(16 + name.length);
      b.writeUInt32BE(FrameType.HWM, 0);
      b.writeBigUInt64BE(frame.txid, 4);
      b.writeUInt32BE(name.length, 12);
      name.copy(b, 16);
      return b;
    }
    case 'heartbeat': {
      checkRange(frame.timestamp, I64_MIN, I64_MAX, 'heartbeat timestamp');
      const b = Buffer.allocUnsafe(12);
      b.writeUInt32BE(FrameType.HEARTBEAT, 0);
      b.writeBigInt64BE(frame.timestamp, 4);
      return b;
    }
  }
}

/**
 * The fixed part of an LTX frame; the chunk-encoded file must follow. LiteFS
 * always writes size 0 ("unknown"); a real size lets our reader verify the
 * body length, and LiteFS readers ignore the field.
 */
export function encodeLtxFrameHeader(name: string, size = 0n): Buffer {
  checkRange(size, 0n, U64_MAX, 'LTX frame size');
  const nameBytes = encodeDatabaseName(name);
  const b = Buffer.allocUnsafe(16 + nameBytes.length);
  b.writeUInt32BE(FrameType.LTX, 0);
  b.writeBigUInt64BE(size, 4);
  b.writeUInt32BE(nameBytes.length, 12);
  nameBytes.copy(b, 16);
  return b;
}

export interface LtxFrameOptions extends ChunkEncoderOptions {
  /** Declared body size; 0n (default) means unknown, as LiteFS sends. */
  size?: bigint;
}

/**
 * A whole LTX frame as write-ready buffers: header, batched chunks, then the
 * terminator. With a non-zero `size` the body must match it exactly, so a
 * file that changed under the sender fails here instead of on the replica.
 */
export async function* encodeLtxFrame(
  name: string,
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: LtxFrameOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const size = opts.size ?? 0n;
  yield encodeLtxFrameHeader(name, size);
  const enc = new ChunkEncoder(opts);
  for await (const piece of body) {
    for (const out of enc.push(piece)) yield out;
    if (size !== 0n && BigInt(enc.totalBytes) > size) {
      throw new StreamError('ERR_STREAM_BODY_TOO_LARGE', `LTX body for ${name} exceeds its declared size ${size}`);
    }
  }
  if (size !== 0n && BigInt(enc.totalBytes) !== size) {
    throw new StreamError('ERR_STREAM_SIZE_MISMATCH', `LTX body for ${name} is ${enc.totalBytes} bytes, declared ${size}`);
  }
  yield enc.end();
}
