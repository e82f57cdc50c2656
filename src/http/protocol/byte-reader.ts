import { StreamError } from './errors.js';

/**
 * Anything that yields bytes: a Node Readable (HTTP/2 stream, request body),
 * an AsyncIterable<Uint8Array>, an array of buffers, or one Uint8Array. Items
 * are checked at run time because a Readable with an encoding set yields
 * strings.
 */
export type ByteSource = AsyncIterable<unknown> | Iterable<unknown> | Uint8Array;

function iteratorOf(source: ByteSource): AsyncIterator<unknown> | Iterator<unknown> {
  if (source instanceof Uint8Array) return [source][Symbol.iterator]();
  if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]();
  return source[Symbol.iterator]();
}

const EMPTY = Buffer.alloc(0);

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Pull-based reader over a ByteSource that holds at most one source item
 * plus a few carried-over bytes, so memory stays bounded by the producer's
 * item size (16 KiB HTTP/2 DATA frames in practice), never by stream length.
 * Reads inside one item return views (no copy).
 */
export class ByteReader {
  readonly #source: ByteSource;
  readonly #it: AsyncIterator<unknown> | Iterator<unknown>;
  /** Set while a pull awaits the source, so close() can end a pull blocked on a silent source. */
  #abortPull: ((err: StreamError) => void) | null = null;
  #cur: Buffer = EMPTY;
  #pos = 0;
  #eof = false;
  #closed = false;
  #offset = 0;

  constructor(source: ByteSource) {
    this.#source = source;
    this.#it = iteratorOf(source);
  }

  /** Bytes consumed so far; used in error messages. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes available without awaiting the source. */
  get buffered(): number {
    return this.#cur.length - this.#pos;
  }

  /** Loads the next non-empty item. False at end of source. */
  async #pull(): Promise<boolean> {
    if (this.#closed) throw new StreamError('ERR_STREAM_ABORTED', 'stream reader is closed');
    while (!this.#eof) {
      let res: IteratorResult<unknown>;
      try {
        const pending = this.#it.next();
        // A fresh promise per pull (not a race against one long-lived
        // promise, which would accumulate a reaction per chunk).
        res = await new Promise<IteratorResult<unknown>>((resolve, reject) => {
          this.#abortPull = reject;
          Promise.resolve(pending).then(resolve, reject);
        });
      } catch (err) {
        this.#eof = true;
        if (this.#closed) throw new StreamError('ERR_STREAM_ABORTED', 'stream reader is closed');
        throw new StreamError('ERR_STREAM_SOURCE', `stream source failed at byte ${this.#offset}`, { cause: err });
      } finally {
        this.#abortPull = null;
      }
      if (this.#closed) throw new StreamError('ERR_STREAM_ABORTED', 'stream reader is closed');
      if (res.done === true) {
        this.#eof = true;
        return false;
      }
      const v = res.value;
      if (!(v instanceof Uint8Array)) {
        throw new StreamError(
          'ERR_STREAM_BAD_SOURCE',
          `stream source yielded ${typeof v} instead of bytes (is an encoding set on the Readable?)`,
        );
      }
      if (v.byteLength === 0) continue;
      this.#cur = toBuffer(v);
      this.#pos = 0;
      return true;
    }
    return false;
  }

  /** True when every byte has been consumed and the source has ended. */
  async atEnd(): Promise<boolean> {
    if (this.buffered > 0) return false;
    return !(await this.#pull());
  }

  /**
   * Exactly `n` bytes (n is small: header fields, names). A view when the
   * bytes sit in one item, else a copy. `what` names the field for errors.
   */
  async readExact(n: number, what: string): Promise<Buffer> {
    if (n === 0) return EMPTY;
    if (this.buffered >= n) return this.#take(n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      if (this.buffered === 0 && !(await this.#pull())) {
        throw new StreamError('ERR_STREAM_TRUNCATED', `stream ended inside ${what}: got ${filled} of ${n} bytes at byte ${this.#offset}`);
      }
      const part = this.#take(Math.min(n - filled, this.buffered));
      part.copy(out, filled);
      filled += part.length;
    }
    return out;
  }

  /** Between 1 and `max` bytes as a view; throws TRUNCATED at end of source. */
  async readSome(max: number, what: string): Promise<Buffer> {
    if (this.buffered === 0 && !(await this.#pull())) {
      throw new StreamError('ERR_STREAM_TRUNCATED', `stream ended inside ${what} at byte ${this.#offset}`);
    }
    return this.#take(Math.min(max, this.buffered));
  }

  /** Up to `max` already-received bytes, without consuming or awaiting. */
  peekBuffered(max: number): Buffer {
    return this.#cur.subarray(this.#pos, this.#pos + Math.min(max, this.buffered));
  }

  #take(n: number): Buffer {
    const b = this.#cur.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.#offset += n;
    if (this.#pos === this.#cur.length) {
      this.#cur = EMPTY;
      this.#pos = 0;
    }
    return b;
  }

  /**
   * Stops the source: a Readable is destroyed, an iterator is returned, and a
   * pull waiting on either fails with ERR_STREAM_ABORTED. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cur = EMPTY;
    this.#pos = 0;
    this.#abortPull?.(new StreamError('ERR_STREAM_ABORTED', 'stream reader is closed'));
    if (this.#eof) return;
    this.#eof = true;
    const src = this.#source as { destroy?: unknown };
    if (typeof src.destroy === 'function') {
      (src.destroy as () => void).call(src);
      return;
    }
    // Not awaited: an async generator queues return() behind a pending
    // next(), which may never settle on a silent source.
    Promise.resolve()
      .then(() => this.#it.return?.())
      .catch(() => {});
  }
}
