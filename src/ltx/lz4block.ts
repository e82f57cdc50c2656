/**
 * Raw LZ4 block compression through lz4-napi (lz4_flex). lz4-napi only
 * speaks a "size-prefixed block": a 4-byte little-endian uncompressed size
 * followed by a raw LZ4 block. Both directions are adapted here, in one
 * place:
 *  - compress: drop the 4-byte prefix from compressSync's output;
 *  - decompress: prepend the *maximum* size the frame allows. lz4_flex
 *    sizes its output buffer from the prefix, decodes into it and returns
 *    only the bytes actually produced; a block that would decode to more
 *    than the prefix is an error, so a hostile block cannot make us
 *    allocate or produce more than one frame block.
 */
import { compress, compressSync, uncompressSync } from 'lz4-napi';
import { LtxError } from './errors.js';

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Compresses `src` into a raw LZ4 block. Returns null when the block would
 * not be smaller than the input; the caller then stores it uncompressed.
 */
export function compressBlock(src: Uint8Array): Uint8Array | null {
  if (src.length === 0) return null;
  const out = compressSync(asBuffer(src));
  const block = out.subarray(4);
  return block.length < src.length ? block : null;
}

/**
 * compressBlock on libuv's thread pool. `src` must not change until the
 * promise settles.
 */
export async function compressBlockAsync(src: Uint8Array): Promise<Uint8Array | null> {
  if (src.length === 0) return null;
  const out = await compress(asBuffer(src));
  const block = out.subarray(4);
  return block.length < src.length ? block : null;
}

/**
 * Decompresses one raw LZ4 block that must expand to at most `maxSize`
 * bytes. `dict` is the preceding output (at most 64 KiB) for frames with
 * linked blocks. Throws ERR_LTX_LZ4 on any malformed input.
 */
export function decompressBlock(src: Uint8Array, maxSize: number, dict?: Uint8Array | null): Uint8Array {
  if (src.length === 0) {
    throw new LtxError('ERR_LTX_LZ4', 'LZ4 block is empty', { field: 'block', value: 0 });
  }
  const prefixed = Buffer.allocUnsafe(4 + src.length);
  prefixed.writeUInt32LE(maxSize, 0);
  prefixed.set(src, 4);
  let out: Buffer;
  try {
    out = dict === undefined || dict === null ? uncompressSync(prefixed) : uncompressSync(prefixed, asBuffer(dict));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new LtxError('ERR_LTX_LZ4', `corrupt LZ4 block of ${src.length} bytes: ${why}`, {
      field: 'block',
      value: src.length,
      cause: err,
    });
  }
  if (out.length > maxSize) {
    throw new LtxError('ERR_LTX_LZ4', `LZ4 block decoded to ${out.length} bytes, over the ${maxSize}-byte block limit`, {
      field: 'block',
      value: out.length,
    });
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
