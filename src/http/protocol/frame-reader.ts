import { Readable } from 'node:stream';
import { ByteReader, type ByteSource } from './byte-reader.js';
import { MAX_DATABASE_NAME_BYTES, decodeDatabaseName } from './db-name.js';
import { StreamError } from './errors.js';
import { FrameType, MAX_LEASE_ID_BYTES, type ControlFrame } from './frames.js';

export interface FrameReaderOptions {
  /** Longest HANDOFF lease ID accepted; default MAX_LEASE_ID_BYTES. */
  maxLeaseIDBytes?: number;
  /** Longest LTX body accepted, in bytes; default unlimited (the body is streamed). */
  maxLtxBytes?: number;
}

/** An LTX frame; its body must be consumed, drained or aborted before `next()`. */
export interface LtxFrame {
  type: 'ltx';
  name: string;
  /** Declared body size; 0n means unknown (what LiteFS always sends). */
  size: bigint;
  body: LtxFrameBody;
}

export type Frame = ControlFrame | LtxFrame;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes that plausibly start an error message rather than a frame type. */
function looksLikeText(b: Buffer): boolean {
  for (const c of b) {
    if (!((c >= 0x20 && c <= 0x7e) || c === 0x09 || c === 0x0a || c === 0x0d)) return false;
  }
  return true;
}

/**
 * Decodes LiteFS v0.5 `/stream` frames from a byte source, one at a time.
 * Memory is bounded: LTX bodies are streamed, every length field is checked
 * before anything is buffered, and no read waits for more than the bytes the
 * current field needs. After any error the reader stays failed and rethrows it.
 */
export class FrameReader {
  readonly #r: ByteReader;
  readonly #maxLeaseID: number;
  readonly #maxLtx: number;
  #body: LtxFrameBody | null = null;
  #error: StreamError | null = null;
  #busy = false;

  constructor(source: ByteSource, opts: FrameReaderOptions = {}) {
    this.#r = new ByteReader(source);
    this.#maxLeaseID = opts.maxLeaseIDBytes ?? MAX_LEASE_ID_BYTES;
    this.#maxLtx = opts.maxLtxBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes consumed from the source so far. */
  get offset(): number {
    return this.#r.offset;
  }

  /**
   * The next frame, or null when the source ends cleanly at a frame
   * boundary (LiteFS treats EOF like END).
   */
  async next(): Promise<Frame | null> {
    if (this.#error) throw this.#error;
    if (this.#body && !this.#body.done) {
      throw new StreamError(
        'ERR_STREAM_BODY_PENDING',
        `the body of the LTX frame for ${JSON.stringify(this.#body.name)} must be read, drained or aborted first`,
      );
    }
    if (this.#busy) throw new StreamError('ERR_STREAM_USAGE', 'FrameReader.next called concurrently');
    this.#busy = true;
    this.#body = null;
    try {
      return await this.#readFrame();
    } catch (err) {
      throw this.fail(err);
    } finally {
      this.#busy = false;
    }
  }

  async #readFrame(): Promise<Frame | null> {
    const r = this.#r;
    if (await r.atEnd()) return null;
    const typeBytes = await r.readExact(4, 'frame type');
    const type = typeBytes.readUInt32BE(0);
    switch (type) {
      case FrameType.LTX: {
        const size = (await r.readExact(8, 'LTX frame size')).readBigUInt64BE(0);
        const name = await this.#readName('LTX frame');
        if (size > BigInt(Math.min(this.#maxLtx, Number.MAX_SAFE_INTEGER))) {
          throw new StreamError('ERR_STREAM_BODY_TOO_LARGE', `LTX frame for ${name} declares ${size} bytes, limit ${this.#maxLtx}`);
        }
        this.#body = new LtxFrameBody(this, r, name, size, this.#maxLtx);
        return { type: 'ltx', name, size, body: this.#body };
      }
      case FrameType.READY:
        return { type: 'ready' };
      case FrameType.END:
        return { type: 'end' };
      case FrameType.DROPDB:
        return { type: 'dropdb', name: await this.#readName('DROPDB frame') };
      case FrameType.HANDOFF: {
        const len = (await r.readExact(4, 'HANDOFF lease ID length')).readUInt32BE(0);
        if (len > this.#maxLeaseID) {
          throw new StreamError('ERR_STREAM_FIELD_TOO_LONG', `HANDOFF lease ID length ${len} exceeds limit ${this.#maxLeaseID}`);
        }
        const bytes = await r.readExact(len, 'HANDOFF lease ID');
        let leaseID: string;
        try {
          leaseID = fatalUtf8.decode(bytes);
        } catch (err) {
          throw new StreamError('ERR_STREAM_BAD_VALUE', 'HANDOFF lease ID is not valid UTF-8', { cause: err });
        }
        return { type: 'handoff', leaseID };
      }
      case FrameType.HWM: {
        const txid = (await r.readExact(8, 'HWM TXID')).readBigUInt64BE(0);
        return { type: 'hwm', txid, name: await this.#readName('HWM frame') };
      }
      case FrameType.HEARTBEAT:
        return { type: 'heartbeat', timestamp: (await r.readExact(8, 'HEARTBEAT timestamp')).readBigInt64BE(0) };
      default: {
        const at = r.offset - 4;
        if (looksLikeText(typeBytes)) {
          // Only what has already arrived: waiting for the rest of a message
          // could block on a server that keeps the stream open.
          const text = Buffer.concat([typeBytes, r.peekBuffered(252)]).toString('latin1');
          throw new StreamError('ERR_STREAM_SERVER_TEXT', `server wrote text into the stream at byte ${at}: ${JSON.stringify(text)}`);
        }
        throw new StreamError('ERR_STREAM_UNKNOWN_FRAME', `unknown frame type ${type} (0x${typeBytes.toString('hex')}) at byte ${at}`);
      }
    }
  }

  async #readName(what: string): Promise<string> {
    const len = (await this.#r.readExact(4, `${what} name length`)).readUInt32BE(0);
    if (len > MAX_DATABASE_NAME_BYTES) {
      throw new StreamError('ERR_STREAM_FIELD_TOO_LONG', `${what} name length ${len} exceeds limit ${MAX_DATABASE_NAME_BYTES}`);
    }
    return decodeDatabaseName(await this.#r.readExact(len, `${what} name`));
  }

  /**
   * Marks the reader failed with `err` (wrapped if not a StreamError), stops
   * the source, and returns the error to throw. Used by LTX bodies too.
   */
  fail(err: unknown): StreamError {
    if (!this.#error) {
      this.#error =
        err instanceof StreamError ? err : new StreamError('ERR_STREAM_SOURCE', `stream failed: ${String(err)}`, { cause: err });
      void this.#r.close();
    }
    return this.#error;
  }

  /** Stops reading and releases the source. Later calls fail with ERR_STREAM_ABORTED. */
  async close(reason?: unknown): Promise<void> {
    if (!this.#error) {
      this.#error = new StreamError('ERR_STREAM_ABORTED', 'stream reader was closed', { cause: reason });
    }
    await this.#r.close();
  }
}

/**
 * The chunk-decoded bytes of one LTX frame. Read it with `for await`,
 * `read()`, `readAll()` or `toReadable()`; or skip it with `drain()`; or give
 * up on the whole stream with `abort()`. Pieces are views of received data,
 * each at most 65535 bytes.
 */
export class LtxFrameBody implements AsyncIterable<Buffer> {
  readonly name: string;
  readonly #owner: FrameReader;
  readonly #r: ByteReader;
  readonly #declared: bigint;
  readonly #max: number;
  #remaining = 0; // bytes left in the current chunk
  #bytes = 0;
  #done = false;
  #busy = false;
  #iterated = false;

  constructor(owner: FrameReader, r: ByteReader, name: string, declared: bigint, max: number) {
    this.#owner = owner;
    this.#r = r;
    this.name = name;
    this.#declared = declared;
    this.#max = max;
  }

  /** Decoded bytes returned so far. */
  get bytesRead(): number {
    return this.#bytes;
  }

  /** True once the chunk terminator has been read. */
  get done(): boolean {
    return this.#done;
  }

  /** The next piece of the body, or null after the terminator. */
  async read(): Promise<Buffer | null> {
    if (this.#done) return null;
    if (this.#busy) throw new StreamError('ERR_STREAM_USAGE', 'LTX body read called concurrently');
    this.#busy = true;
    try {
      return await this.#readPiece();
    } catch (err) {
      throw this.#owner.fail(err);
    } finally {
      this.#busy = false;
    }
  }

  async #readPiece(): Promise<Buffer | null> {
    if (this.#remaining === 0) {
      const len = (await this.#r.readExact(2, `chunk length in LTX frame for ${this.name}`)).readUInt16BE(0);
      if (len === 0) {
        if (this.#declared !== 0n && BigInt(this.#bytes) !== this.#declared) {
          throw new StreamError(
            'ERR_STREAM_SIZE_MISMATCH',
            `LTX frame for ${this.name} carried ${this.#bytes} bytes, declared ${this.#declared}`,
          );
        }
        this.#done = true;
        return null;
      }
      if (this.#bytes + len > this.#max) {
        throw new StreamError('ERR_STREAM_BODY_TOO_LARGE', `LTX frame for ${this.name} exceeds limit ${this.#max} bytes`);
      }
      if (this.#declared !== 0n && BigInt(this.#bytes + len) > this.#declared) {
        throw new StreamError('ERR_STREAM_BODY_TOO_LARGE', `LTX frame for ${this.name} exceeds its declared size ${this.#declared}`);
      }
      this.#remaining = len;
    }
    const piece = await this.#r.readSome(this.#remaining, `chunk of LTX frame for ${this.name}`);
    this.#remaining -= piece.length;
    this.#bytes += piece.length;
    return piece;
  }

  /** Single-use async iteration; breaking out early leaves the rest for drain(). */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.#iterated) throw new StreamError('ERR_STREAM_USAGE', `LTX body for ${this.name} iterated twice`);
    this.#iterated = true;
    return {
      next: async (): Promise<IteratorResult<Buffer>> => {
        const p = await this.read();
        return p === null ? { done: true, value: undefined } : { done: false, value: p };
      },
      return: async (): Promise<IteratorResult<Buffer>> => ({ done: true, value: undefined }),
    };
  }

  /** Reads and discards the rest of the body; returns the bytes skipped. */
  async drain(): Promise<number> {
    let n = 0;
    for (let p = await this.read(); p !== null; p = await this.read()) n += p.length;
    return n;
  }

  /** The rest of the body in one buffer, refusing to grow past `maxBytes`. */
  async readAll(maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for (let p = await this.read(); p !== null; p = await this.read()) {
      n += p.length;
      if (n > maxBytes) {
        throw this.#owner.fail(new StreamError('ERR_STREAM_BODY_TOO_LARGE', `LTX frame for ${this.name} exceeds ${maxBytes} bytes`));
      }
      // Views into the source's items are kept alive only until the concat.
      parts.push(p);
    }
    return Buffer.concat(parts, n);
  }

  /** The rest of the body as a byte Readable (for pipeline() to a file). */
  toReadable(): Readable {
    return Readable.from(this, { objectMode: false });
  }

  /** Abandons the body and the whole stream (its position is lost). */
  async abort(reason?: unknown): Promise<void> {
    if (this.#done) return;
    await this.#owner.close(reason);
  }
}
