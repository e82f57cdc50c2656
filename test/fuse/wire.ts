import { Opcode } from '../../src/fuse/index.js';

/** Builders for kernel→daemon messages, as the kernel lays them out (tests only). */
export interface HeaderFields {
  nodeid?: bigint;
  uid?: number;
  gid?: number;
  pid?: number;
  totalExtlen?: number;
}

export function request(opcode: number, unique: bigint, body: Buffer = Buffer.alloc(0), h: HeaderFields = {}): Buffer {
  const buf = Buffer.alloc(40 + body.length);
  buf.writeUInt32LE(buf.length, 0);
  buf.writeUInt32LE(opcode, 4);
  buf.writeBigUInt64LE(unique, 8);
  buf.writeBigUInt64LE(h.nodeid ?? 1n, 16);
  buf.writeUInt32LE(h.uid ?? 0, 24);
  buf.writeUInt32LE(h.gid ?? 0, 28);
  buf.writeUInt32LE(h.pid ?? 1234, 32);
  buf.writeUInt16LE(h.totalExtlen ?? 0, 36);
  body.copy(buf, 40);
  return buf;
}

export function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s), Buffer.from([0])]);
}

export function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeUInt32LE(x, i * 4));
  return b;
}

export function u64s(...v: bigint[]): Buffer {
  const b = Buffer.alloc(v.length * 8);
  v.forEach((x, i) => b.writeBigUInt64LE(x, i * 8));
  return b;
}

/** fuse_init_in as kernel 7.45 sends it (64 bytes). */
export function initIn(minor: number, flags: number, flags2 = 0, maxReadahead = 131072, major = 7): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(major, 0);
  b.writeUInt32LE(minor, 4);
  b.writeUInt32LE(maxReadahead, 8);
  b.writeUInt32LE(flags >>> 0, 12);
  b.writeUInt32LE(flags2 >>> 0, 16);
  return b;
}

export function readIn(
  fh: bigint,
  offset: bigint,
  size: number,
  opts: { readFlags?: number; lockOwner?: bigint; flags?: number } = {},
): Buffer {
  return Buffer.concat([u64s(fh, offset), u32s(size, opts.readFlags ?? 0), u64s(opts.lockOwner ?? 0n), u32s(opts.flags ?? 0, 0)]);
}

export function writeIn(
  fh: bigint,
  offset: bigint,
  data: Buffer,
  opts: { writeFlags?: number; lockOwner?: bigint; flags?: number } = {},
): Buffer {
  return Buffer.concat([
    u64s(fh, offset),
    u32s(data.length, opts.writeFlags ?? 0),
    u64s(opts.lockOwner ?? 0n),
    u32s(opts.flags ?? 0, 0),
    data,
  ]);
}

export function lkIn(fh: bigint, owner: bigint, start: bigint, end: bigint, type: number, pid: number, lkFlags = 0): Buffer {
  return Buffer.concat([u64s(fh, owner, start, end), u32s(type, pid, lkFlags, 0)]);
}

/** A decoded reply: header fields plus payload. */
export interface Reply {
  len: number;
  error: number;
  unique: bigint;
  payload: Buffer;
}

export function parseReply(buf: Buffer): Reply {
  return { len: buf.readUInt32LE(0), error: buf.readInt32LE(4), unique: buf.readBigUInt64LE(8), payload: buf.subarray(16) };
}

export { Opcode };
