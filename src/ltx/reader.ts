/**
 * Byte sources for the decoder and a buffered exact-length reader on top of
 * them. Memory stays bounded by one source chunk plus the largest single
 * read (a page or an LZ4 block), whatever the file size.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { LtxError } from './errors.js';

/**
 * Where LTX bytes come from: a file path (opened and closed by the reader),
 * an open FileHandle (read from offset 0, left open), a whole file in
 * memory, or any async iterable of chunks — a Node Readable, an HTTP body.
 */
export type LtxSource = string | FileHandle | Uint8Array | AsyncIterable<Uint8Array>;

/** Bytes requested per read from a file; also the read-ahead depth. */
export const FILE_READ_SIZE = 1 << 20;

export interface ChunkSource {
  next(): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

// FileHandle has no public constructor to test against; a Node ReadStream also has `read` and
// a numeric `fd`, so async iterables are recognised first (see openSource).
function isFileHandle(v: unknown): v is FileHandle {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { read?: unknown; stat?: unknown; close?: unknown; fd?: unknown };
  return typeof o.read === 'function' && typeof o.stat === 'function' && typeof o.close === 'function' && typeof o.fd === 'number';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Uint8Array> {
  return typeof v === 'object' && v !== null && typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

function fileChunks(fh: FileHandle, owned: boolean): ChunkSource {
  let position = 0;
  let eof = false;
  // One read is kept in flight so I/O overlaps with hashing the previous chunk.
  const issue = async (): Promise<Uint8Array | null> => {
    if (eof) return null;
    const buf = Buffer.allocUnsafe(FILE_READ_SIZE);
    const { bytesRead } = await fh.read(buf, 0, buf.length, position);
    position += bytesRead;
    if (bytesRead === 0) {
      eof = true;
      return null;
    }
    return buf.subarray(0, bytesRead);
  };
  let pending: Promise<Uint8Array | null> | null = null;
  return {
    async next() {
      const cur = pending ?? issue();
      const chunk = await cur;
      pending = chunk === null ? null : issue();
      // Keep an unobserved rejection of the read-ahead from crashing the process.
      pending?.catch(() => {});
      return chunk;
    },
    async close() {
      if (pending !== null) await pending.catch(() => {});
      pending = null;
      eof = true;
      if (owned) await fh.close();
    },
  };
}

function iterableChunks(it: AsyncIterable<Uint8Array>): ChunkSource {
  const iter = it[Symbol.asyncIterator]();
  let done = false;
  return {
    async next() {
      if (done) return null;
      for (;;) {
        const r = await iter.next();
        if (r.done === true) {
          done = true;
          return null;
        }
        const v: unknown = r.value;
        if (typeof v === 'string') return Buffer.from(v);
        if (!(v instanceof Uint8Array)) throw new TypeError('LTX source yielded a chunk that is not a Uint8Array');
        if (v.length > 0) return v;
      }
    },
    async close() {
      if (!done) {
        done = true;
        await iter.return?.();
      }
    },
  };
}

export async function openSource(src: LtxSource): Promise<ChunkSource> {
  if (typeof src === 'string') return fileChunks(await open(src, 'r'), true);
  if (src instanceof Uint8Array) {
    let given = false;
    return {
      async next() {
        if (given || src.length === 0) return null;
        given = true;
        return src;
      },
      async close() {},
    };
  }
  if (isAsyncIterable(src)) return iterableChunks(src);
  if (isFileHandle(src)) return fileChunks(src, false);
  throw new TypeError('unsupported LTX source: expected a path, FileHandle, Uint8Array or async iterable');
}

/**
 * Exact-length reads over a stream of chunks. A returned view is valid only
 * until the next call on the same reader: it may point into a source chunk
 * or into a scratch buffer that is reused.
 */
export class ChunkReader {
  private cur: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private scratch: Uint8Array = new Uint8Array(0);
  private ended = false;
  /** Bytes handed out so far. */
  consumed = 0;

  constructor(
    private readonly pull: () => Promise<Uint8Array | null>,
    /** Names the stream in truncation errors ("LTX file", "LZ4 frame"). */
    private readonly label: string,
  ) {}

  /** n bytes if they are already buffered, else null (no I/O, no await). */
  tryRead(n: number): Uint8Array | null {
    if (this.cur.length - this.pos < n) return null;
    const v = this.cur.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.consumed += n;
    return v;
  }

  async read(n: number, what: string): Promise<Uint8Array> {
    const fast = this.tryRead(n);
    if (fast !== null) return fast;
    if (this.scratch.length < n) this.scratch = new Uint8Array(Math.max(n, 4096));
    const out = this.scratch.subarray(0, n);
    let got = 0;
    while (got < n) {
      if (this.pos === this.cur.length && !(await this.fill())) {
        throw new LtxError(
          'ERR_LTX_TRUNCATED',
          `${this.label} truncated: ${what} needs ${n} bytes, only ${got} left (at byte ${this.consumed})`,
          { field: what, value: this.consumed },
        );
      }
      const take = Math.min(n - got, this.cur.length - this.pos);
      out.set(this.cur.subarray(this.pos, this.pos + take), got);
      this.pos += take;
      got += take;
    }
    this.consumed += n;
    return out;
  }

  /** Up to `max` bytes from what is buffered (pulling a chunk if none is), or null at the end. */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.pos === this.cur.length && !(await this.fill())) return null;
    const n = Math.min(max, this.cur.length - this.pos);
    const v = this.cur.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.consumed += n;
    return v;
  }

  /** Discards n bytes without keeping them. */
  async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pos === this.cur.length && !(await this.fill())) {
        throw new LtxError('ERR_LTX_TRUNCATED', `${this.label} truncated while skipping ${what}`, {
          field: what,
          value: this.consumed,
        });
      }
      const take = Math.min(left, this.cur.length - this.pos);
      this.pos += take;
      left -= take;
      this.consumed += take;
    }
  }

  /** True when no byte is left (pulls at most one more chunk to find out). */
  async atEnd(): Promise<boolean> {
    if (this.pos < this.cur.length) return false;
    return !(await this.fill());
  }

  private async fill(): Promise<boolean> {
    while (!this.ended) {
      const c = await this.pull();
      if (c === null) {
        this.ended = true;
        break;
      }
      if (c.length > 0) {
        this.cur = c;
        this.pos = 0;
        return true;
      }
    }
    this.cur = new Uint8Array(0);
    this.pos = 0;
    return false;
  }
}
