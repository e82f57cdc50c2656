import { FuseProtocolError } from '../errors.js';

/**
 * Bounds-checked little-endian cursor over one request's argument bytes.
 * Every read past `end` throws FuseProtocolError, so a truncated kernel
 * message becomes a typed error, never a RangeError or garbage.
 */
export class ArgReader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
    private readonly what: string,
    private readonly where: { unique: bigint; opcode: number },
  ) {
    this.pos = start;
  }

  /** Throws a FuseProtocolError naming this message. */
  fail(message: string): never {
    throw new FuseProtocolError(`${this.what}: ${message}`, this.where);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number, field: string): void {
    if (this.pos + n > this.end) {
      throw new FuseProtocolError(
        `${this.what}: truncated at ${field} (need ${n} bytes at offset ${this.pos}, message ends at ${this.end})`,
        this.where,
      );
    }
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }

  /** A NUL-terminated name. Names are decoded as UTF-8. */
  cstring(field: string): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) {
      throw new FuseProtocolError(`${this.what}: ${field} is not NUL-terminated within the message`, this.where);
    }
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** A view of `n` bytes (not a copy). */
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}
