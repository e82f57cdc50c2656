import { dirname } from 'node:path';
import { LtxEncoder, encodeLtxToBuffer, type Header, type Page, type Trailer } from '../ltx/index.js';
import type { StoreFile, StoreFS } from './sys.js';

/** LTX files up to this size are encoded in memory and written in one durable write. */
const IN_MEMORY_BYTES = 4 << 20;
/** Bytes per read when an LTX file is decoded from disk. */
const READ_CHUNK = 1 << 20;

/**
 * Writes an LTX file durably under its final name: after this resolves, a
 * crash (or power loss) leaves either no file or the whole file. Small
 * files (a typical commit) are encoded in memory and handed to the file
 * system's durable write in one piece; large ones stream through the
 * encoder to a temp file in bounded memory.
 */
export async function writeLtxDurably(
  sys: StoreFS,
  path: string,
  header: Header,
  pages: readonly Page[] | AsyncIterable<Page>,
  postApplyChecksum: bigint,
): Promise<void> {
  if (Array.isArray(pages) && pages.length * header.pageSize <= IN_MEMORY_BYTES) {
    await sys.writeFileDurably(path, encodeLtxToBuffer(header, pages as readonly Page[], postApplyChecksum));
    return;
  }
  const tmp = `${path}.tmp`;
  const f = await sys.open(tmp, 'truncate');
  if (f === null) throw new Error(`cannot create ${tmp}`);
  try {
    try {
      await encodeTo(f, header, pages, postApplyChecksum);
      await f.sync(true);
    } finally {
      await f.close();
    }
    await sys.rename(tmp, path);
  } catch (err) {
    await sys.unlink(tmp).catch(() => false);
    throw err;
  }
  await sys.syncDir(dirname(path));
}

/** Encodes an LTX file into `file` from offset 0 (no sync); returns its trailer and size. */
export async function encodeTo(
  file: StoreFile,
  header: Header,
  pages: Iterable<Page> | AsyncIterable<Page>,
  postApplyChecksum: bigint,
  onProgress?: (bytes: number) => void,
): Promise<{ trailer: Trailer; size: number }> {
  let size = 0;
  const enc = new LtxEncoder(
    {
      write: async (chunk: Uint8Array) => {
        await file.write(chunk, size);
        size += chunk.length;
        onProgress?.(size);
      },
    },
    { bufferSize: 1 << 20 },
  );
  await enc.encodeHeader(header);
  for await (const p of pages) await enc.encodePage(p.pgno, p.data);
  const trailer = await enc.close(postApplyChecksum);
  return { trailer, size };
}

/** A file's bytes as the chunks LtxDecoder reads. */
export async function* fileChunks(file: StoreFile): AsyncGenerator<Uint8Array> {
  for (let off = 0; ;) {
    const chunk = await file.read(READ_CHUNK, off);
    if (chunk.length === 0) return;
    off += chunk.length;
    yield chunk;
  }
}
