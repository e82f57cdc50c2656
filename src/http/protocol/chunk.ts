/**
 * LiteFS's chunked encoding (v0.4+): repeated `u16 BE len` + `len` bytes with
 * len in 1..65535, ended by a `u16 0`. It delimits an LTX file inside the
 * stream without knowing its size up front.
 */
export const MAX_CHUNK_SIZE = 0xffff;

/** The `u16 0` that ends a chunk stream. */
export const CHUNK_TERMINATOR: Buffer = Buffer.alloc(2);

/** Default output batch of ChunkEncoder: large enough that per-write costs vanish. */
export const DEFAULT_CHUNK_BATCH_BYTES = 256 * 1024;

/** Encoded size of `n` payload bytes (without the terminator). */
export function chunkedSize(n: number): number {
  return n + 2 * Math.ceil(n / MAX_CHUNK_SIZE);
}

/**
 * Copies `pieces` (total `total` bytes) into one buffer as maximal chunks,
 * optionally followed by the terminator. One allocation, one copy per byte.
 */
function encodeInto(pieces: readonly Uint8Array[], total: number, terminate: boolean): Buffer {
  const out = Buffer.allocUnsafe(chunkedSize(total) + (terminate ? 2 : 0));
  let o = 0;
  let room = 0; // bytes left in the current chunk
  let left = total;
  for (const p of pieces) {
    let i = 0;
    while (i < p.length) {
      if (room === 0) {
        room = Math.min(left, MAX_CHUNK_SIZE);
        out.writeUInt16BE(room, o);
        o += 2;
      }
      const n = Math.min(room, p.length - i);
      out.set(p.subarray(i, i + n), o);
      o += n;
      i += n;
      room -= n;
      left -= n;
    }
  }
  if (terminate) o = out.writeUInt16BE(0, o);
  return out;
}

/** Encodes one byte sequence as chunks (no terminator). Empty input → empty output. */
export function encodeChunks(data: Uint8Array): Buffer {
  return encodeInto([data], data.length, false);
}

export interface ChunkEncoderOptions {
  /** Emit output once this many payload bytes are pending; default 256 KiB. */
  batchBytes?: number;
}

/**
 * Streaming chunk encoder. Pieces of any size go in; encoded buffers come out
 * only once `batchBytes` are pending, so a sender makes one write per batch
 * instead of one per 64 KiB chunk or per tiny piece. A pushed piece is
 * referenced, not copied, until its batch is encoded, so callers must not
 * mutate it afterwards (hand over fresh buffers, e.g. one per file read).
 */
export class ChunkEncoder {
  readonly #batchBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #ended = false;
  #total = 0;

  constructor(opts: ChunkEncoderOptions = {}) {
    const batch = opts.batchBytes ?? DEFAULT_CHUNK_BATCH_BYTES;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batchBytes ${batch} must be a positive integer`);
    this.#batchBytes = batch;
  }

  /** Payload bytes accepted so far. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Adds a piece; returns encoded output ready to write (possibly empty). */
  push(piece: Uint8Array): Buffer[] {
    if (this.#ended) throw new Error('ChunkEncoder.push after end');
    if (piece.length === 0) return [];
    this.#pending.push(piece);
    this.#pendingBytes += piece.length;
    this.#total += piece.length;
    if (this.#pendingBytes < this.#batchBytes) return [];
    return [this.#flush(false)];
  }

  /** Encodes whatever is pending plus the terminator. */
  end(): Buffer {
    if (this.#ended) throw new Error('ChunkEncoder.end called twice');
    this.#ended = true;
    return this.#flush(true);
  }

  #flush(terminate: boolean): Buffer {
    const out = encodeInto(this.#pending, this.#pendingBytes, terminate);
    this.#pending = [];
    this.#pendingBytes = 0;
    return out;
  }
}
