/**
 * Durable LTX file creation: write to a temporary name, fsync, rename over
 * the final name, fsync the directory. A crash leaves either no file or a
 * complete one, never a torn LTX file under its final name.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LtxEncoder, type EncoderOptions, type LtxSink } from './encoder.js';
import type { Header, Page, Trailer } from './types.js';

export class LtxFileSink implements LtxSink {
  private done = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly tmpPath: string,
  ) {}

  /** Creates (truncating) `tmpPath`, by default `<path>.tmp`. */
  static async create(path: string, opts: { tmpPath?: string; mode?: number } = {}): Promise<LtxFileSink> {
    const tmpPath = opts.tmpPath ?? `${path}.tmp`;
    const fh = await open(tmpPath, 'w', opts.mode ?? 0o644);
    return new LtxFileSink(fh, path, tmpPath);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
  }

  /** fsync, close, rename into place, fsync the directory. On failure the temporary file is removed. */
  async commit(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.fh.sync();
      await this.fh.close();
      await rename(this.tmpPath, this.path);
    } catch (err) {
      await this.fh.close().catch(() => {});
      await unlink(this.tmpPath).catch(() => {});
      throw err;
    }
    await syncDir(dirname(this.path));
  }

  /** Closes and removes the temporary file; safe to call after a failure. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fh.close().catch(() => {});
    await unlink(this.tmpPath).catch(() => {});
  }
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Encodes an LTX file at `path` durably (tmp file, fsync, rename, fsync
 * dir). On any error the temporary file is removed and nothing appears at
 * `path`.
 */
export async function writeLtxFile(
  path: string,
  header: Header,
  pages: Iterable<Page> | AsyncIterable<Page>,
  postApplyChecksum: bigint,
  opts: EncoderOptions & { tmpPath?: string } = {},
): Promise<Trailer> {
  const sink = await LtxFileSink.create(path, opts.tmpPath === undefined ? {} : { tmpPath: opts.tmpPath });
  try {
    const enc = new LtxEncoder(sink, opts);
    await enc.encodeHeader(header);
    for await (const p of pages) await enc.encodePage(p.pgno, p.data);
    const trailer = await enc.close(postApplyChecksum);
    await sink.commit();
    return trailer;
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
