import type { ClientHttp2Stream, ServerHttp2Stream } from 'node:http2';

/*
 * LiteFS v0.5 `/stream` wire format written from the documentation
 * (reference §5.2–5.3), independently of src/http/protocol, so tests can
 * speak to our daemons the way a Go LiteFS node would:
 *
 *   position map: u32 count, then per database (names ascending):
 *                 u32 nameLen, name, u64 TXID, u64 post-apply checksum
 *   frame:        u32 type + payload
 *     1 LTX       u64 size (0 = unknown), u32 nameLen, name, then the LTX
 *                 file as chunks: u16 len (1..65535) + bytes, ended by u16 0
 *     2 READY  3 END  4 DROPDB (u32 len + name)  5 HANDOFF (u32 len + id)
 *     6 HWM (u64 TXID, u32 len + name)  7 HEARTBEAT (i64 ms since epoch)
 * All integers big-endian.
 */

export type WireFrame =
  | { type: 'ltx'; size: bigint; name: string; body: Buffer; chunks: number }
  | { type: 'ready' }
  | { type: 'end' }
  | { type: 'dropdb'; name: string }
  | { type: 'handoff'; leaseID: string }
  | { type: 'hwm'; txid: bigint; name: string }
  | { type: 'heartbeat'; ms: bigint };

export function encodePosMapByHand(entries: { name: string; txid: bigint; checksum: bigint }[]): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const parts: Buffer[] = [u32(sorted.length)];
  for (const e of sorted) {
    const name = Buffer.from(e.name, 'utf8');
    parts.push(u32(name.length), name, u64(e.txid), u64(e.checksum));
  }
  return Buffer.concat(parts);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

export function i64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
}

/** The chunked encoding of `body` with chunks of at most `max` bytes, terminated. */
export function chunked(body: Buffer, max = 65535): Buffer {
  const parts: Buffer[] = [];
  for (let o = 0; o < body.length; o += max) {
    const piece = body.subarray(o, Math.min(body.length, o + max));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(piece.length);
    parts.push(len, piece);
  }
  parts.push(Buffer.alloc(2));
  return Buffer.concat(parts);
}

export function ltxFrameBytes(name: string, ltx: Buffer, opts: { size?: bigint; chunk?: number } = {}): Buffer {
  const n = Buffer.from(name, 'utf8');
  return Buffer.concat([u32(1), u64(opts.size ?? 0n), u32(n.length), n, chunked(ltx, opts.chunk)]);
}

export const READY = u32(2);
export const END = u32(3);
export function heartbeatBytes(ms = BigInt(Date.now())): Buffer {
  return Buffer.concat([u32(7), i64(ms)]);
}

/** Reads frames from a /stream response, with a time limit per frame. */
export class WireReader {
  private buf = Buffer.alloc(0);
  private ended = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(stream: ClientHttp2Stream) {
    stream.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (err: Error) => {
      this.error = err;
      this.notify();
    });
    stream.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** True once the stream ended and every byte was consumed. */
  get atEnd(): boolean {
    return this.ended && this.buf.length === 0;
  }

  private async need(n: number, deadline: number): Promise<boolean> {
    while (this.buf.length < n) {
      if (this.error !== null) throw this.error;
      if (this.ended) return false;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within the time limit (${this.buf.length} of ${n} bytes buffered)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return true;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  private async bytes(n: number, deadline: number, what: string): Promise<Buffer> {
    if (!(await this.need(n, deadline))) throw new Error(`stream ended inside ${what}`);
    return this.take(n);
  }

  /** The next frame; null on a clean end of stream at a frame boundary. */
  async next(timeoutMs = 10_000): Promise<WireFrame | null> {
    const deadline = Date.now() + timeoutMs;
    if (!(await this.need(4, deadline))) {
      if (this.buf.length === 0) return null;
      throw new Error(`stream ended inside a frame type (${this.buf.length} bytes)`);
    }
    const type = this.take(4).readUInt32BE(0);
    const name = async (what: string): Promise<string> => {
      const len = (await this.bytes(4, deadline, `${what} name length`)).readUInt32BE(0);
      if (len > 4096) throw new Error(`${what} name length ${len}`);
      return (await this.bytes(len, deadline, `${what} name`)).toString('utf8');
    };
    switch (type) {
      case 1: {
        const size = (await this.bytes(8, deadline, 'LTX size')).readBigUInt64BE(0);
        const n = await name('LTX');
        const parts: Buffer[] = [];
        let chunks = 0;
        for (let i = 0; i < 1_000_000; i++) {
          const len = (await this.bytes(2, deadline, 'chunk length')).readUInt16BE(0);
          if (len === 0) return { type: 'ltx', size, name: n, body: Buffer.concat(parts), chunks };
          parts.push(Buffer.from(await this.bytes(len, deadline, 'chunk')));
          chunks++;
        }
        throw new Error('too many chunks');
      }
      case 2:
        return { type: 'ready' };
      case 3:
        return { type: 'end' };
      case 4:
        return { type: 'dropdb', name: await name('DROPDB') };
      case 5: {
        const len = (await this.bytes(4, deadline, 'lease ID length')).readUInt32BE(0);
        return { type: 'handoff', leaseID: (await this.bytes(len, deadline, 'lease ID')).toString('utf8') };
      }
      case 6: {
        const txid = (await this.bytes(8, deadline, 'HWM TXID')).readBigUInt64BE(0);
        return { type: 'hwm', txid, name: await name('HWM') };
      }
      case 7:
        return { type: 'heartbeat', ms: (await this.bytes(8, deadline, 'heartbeat')).readBigInt64BE(0) };
      default:
        throw new Error(`unknown frame type ${type}`);
    }
  }

  /** Reads frames until one satisfies `match`; returns it and everything skipped. */
  async until(match: (f: WireFrame) => boolean, timeoutMs = 10_000, maxFrames = 1000): Promise<{ frame: WireFrame; skipped: WireFrame[] }> {
    const deadline = Date.now() + timeoutMs;
    const skipped: WireFrame[] = [];
    for (let i = 0; i < maxFrames; i++) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (f === null) throw new Error(`stream ended before the frame wanted; got ${skipped.map((s) => s.type).join(',')}`);
      if (match(f)) return { frame: f, skipped };
      skipped.push(f);
    }
    throw new Error('too many frames');
  }
}

/** The LTX v1 header fields, parsed by hand (reference §1.2). */
export interface LtxHeaderByHand {
  magic: string;
  flags: number;
  pageSize: number;
  commit: number;
  minTXID: bigint;
  maxTXID: bigint;
  timestamp: bigint;
  preApply: bigint;
  nodeID: bigint;
}

export function parseLtxHeaderByHand(b: Buffer): LtxHeaderByHand {
  return {
    magic: b.subarray(0, 4).toString('latin1'),
    flags: b.readUInt32BE(4),
    pageSize: b.readUInt32BE(8),
    commit: b.readUInt32BE(12),
    minTXID: b.readBigUInt64BE(16),
    maxTXID: b.readBigUInt64BE(24),
    timestamp: b.readBigInt64BE(32),
    preApply: b.readBigUInt64BE(40),
    nodeID: b.readBigUInt64BE(72),
  };
}

/** The trailer's post-apply checksum (first 8 of the last 16 bytes). */
export function ltxPostApply(b: Buffer): bigint {
  return b.readBigUInt64BE(b.length - 16);
}

/** Writes respecting backpressure. */
export async function writeAll(stream: ServerHttp2Stream, buf: Buffer): Promise<void> {
  if (stream.destroyed) throw new Error('stream destroyed');
  if (!stream.write(buf)) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
    });
  }
}
