import type { Attr, AttrReply, EntryReply, FileLock, OpenReply, StatfsReply } from '../types.js';
import { FOPEN, F_RDLCK, F_UNLCK, F_WRLCK } from './flags.js';

export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const STATFS_OUT_SIZE = 80;
export const LK_OUT_SIZE = 24;
export const INIT_OUT_SIZE = 64;

const NS_PER_SEC = 1_000_000_000n;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Writes struct fuse_out_header at the start of `buf`. */
export function writeOutHeader(buf: Buffer, len: number, error: number, unique: bigint): void {
  buf.writeUInt32LE(len, 0);
  buf.writeInt32LE(error, 4);
  buf.writeBigUInt64LE(unique, 8);
}

/** A reply carrying only an errno (0 = success with no payload). */
export function encodeStatus(unique: bigint, errno: number): Buffer {
  const buf = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  writeOutHeader(buf, OUT_HEADER_SIZE, errno === 0 ? 0 : -errno, unique);
  return buf;
}

/** A reply whose payload is `size` bytes written by `fill` at offset 16. */
export function encodeReply(unique: bigint, size: number, fill: (buf: Buffer, off: number) => void): Buffer {
  const buf = Buffer.alloc(OUT_HEADER_SIZE + size);
  writeOutHeader(buf, buf.length, 0, unique);
  fill(buf, OUT_HEADER_SIZE);
  return buf;
}

/** Seconds (fractional) → [sec, nsec] for the *_valid fields; negative, NaN → 0. */
export function splitTimeout(seconds: number | undefined): [bigint, number] {
  if (seconds === undefined || !(seconds > 0)) return [0n, 0];
  if (!Number.isFinite(seconds) || seconds >= 2 ** 53) return [BigInt(2 ** 53), 0];
  const whole = Math.floor(seconds);
  return [BigInt(whole), Math.min(999_999_999, Math.round((seconds - whole) * 1e9))];
}

function splitNs(ns: bigint): [bigint, number] {
  if (ns <= 0n) return [0n, 0];
  return [ns / NS_PER_SEC, Number(ns % NS_PER_SEC)];
}

function u64(v: bigint): bigint {
  return v < 0n ? 0n : v > U64_MAX ? U64_MAX : v;
}

/** struct fuse_attr (88 bytes) at `off`. */
export function writeAttr(buf: Buffer, off: number, a: Attr): void {
  const [as, ans] = splitNs(a.atimeNs);
  const [ms, mns] = splitNs(a.mtimeNs);
  const [cs, cns] = splitNs(a.ctimeNs);
  const size = u64(a.size);
  buf.writeBigUInt64LE(u64(a.ino), off);
  buf.writeBigUInt64LE(size, off + 8);
  buf.writeBigUInt64LE(a.blocks !== undefined ? u64(a.blocks) : (size + 511n) / 512n, off + 16);
  buf.writeBigUInt64LE(as, off + 24);
  buf.writeBigUInt64LE(ms, off + 32);
  buf.writeBigUInt64LE(cs, off + 40);
  buf.writeUInt32LE(ans, off + 48);
  buf.writeUInt32LE(mns, off + 52);
  buf.writeUInt32LE(cns, off + 56);
  buf.writeUInt32LE(a.mode >>> 0, off + 60);
  buf.writeUInt32LE(a.nlink >>> 0, off + 64);
  buf.writeUInt32LE(a.uid >>> 0, off + 68);
  buf.writeUInt32LE(a.gid >>> 0, off + 72);
  buf.writeUInt32LE((a.rdev ?? 0) >>> 0, off + 76);
  buf.writeUInt32LE((a.blksize ?? 4096) >>> 0, off + 80);
  buf.writeUInt32LE((a.flags ?? 0) >>> 0, off + 84);
}

/** struct fuse_entry_out (128 bytes) at `off`. Attr may be absent only for nodeid 0. */
export function writeEntryOut(buf: Buffer, off: number, e: EntryReply): void {
  const [es, ens] = splitTimeout(e.entryTimeoutSec);
  const [as, ans] = splitTimeout(e.attrTimeoutSec);
  buf.writeBigUInt64LE(u64(e.nodeid), off);
  buf.writeBigUInt64LE(u64(e.generation ?? 0n), off + 8);
  buf.writeBigUInt64LE(es, off + 16);
  buf.writeBigUInt64LE(as, off + 24);
  buf.writeUInt32LE(ens, off + 32);
  buf.writeUInt32LE(ans, off + 36);
  if (e.attr) writeAttr(buf, off + 40, e.attr);
  else buf.fill(0, off + 40, off + 40 + ATTR_SIZE);
}

export function writeAttrOut(buf: Buffer, off: number, r: AttrReply): void {
  const [s, ns] = splitTimeout(r.attrTimeoutSec);
  buf.writeBigUInt64LE(s, off);
  buf.writeUInt32LE(ns, off + 8);
  buf.writeUInt32LE(0, off + 12);
  writeAttr(buf, off + 16, r.attr);
}

export function openFlagsOf(o: OpenReply): number {
  let f = 0;
  if (o.directIo) f |= FOPEN.DIRECT_IO;
  if (o.keepCache) f |= FOPEN.KEEP_CACHE;
  if (o.nonSeekable) f |= FOPEN.NONSEEKABLE;
  if (o.cacheDir) f |= FOPEN.CACHE_DIR;
  if (o.stream) f |= FOPEN.STREAM;
  if (o.noFlush) f |= FOPEN.NOFLUSH;
  if (o.parallelDirectWrites) f |= FOPEN.PARALLEL_DIRECT_WRITES;
  return f;
}

export function writeOpenOut(buf: Buffer, off: number, o: OpenReply): void {
  buf.writeBigUInt64LE(u64(o.fh ?? 0n), off);
  buf.writeUInt32LE(openFlagsOf(o), off + 8);
  buf.writeUInt32LE(0, off + 12);
}

export function writeStatfsOut(buf: Buffer, off: number, s: StatfsReply): void {
  buf.writeBigUInt64LE(u64(s.blocks ?? 0n), off);
  buf.writeBigUInt64LE(u64(s.bfree ?? 0n), off + 8);
  buf.writeBigUInt64LE(u64(s.bavail ?? 0n), off + 16);
  buf.writeBigUInt64LE(u64(s.files ?? 0n), off + 24);
  buf.writeBigUInt64LE(u64(s.ffree ?? 0n), off + 32);
  buf.writeUInt32LE(s.bsize ?? 4096, off + 40);
  buf.writeUInt32LE(s.namelen ?? 255, off + 44);
  buf.writeUInt32LE(s.frsize ?? s.bsize ?? 4096, off + 48);
  buf.fill(0, off + 52, off + STATFS_OUT_SIZE);
}

export function lockTypeNumber(t: FileLock['type']): number {
  return t === 'read' ? F_RDLCK : t === 'write' ? F_WRLCK : F_UNLCK;
}

export function writeLkOut(buf: Buffer, off: number, l: FileLock): void {
  buf.writeBigUInt64LE(u64(l.start), off);
  buf.writeBigUInt64LE(u64(l.end), off + 8);
  buf.writeUInt32LE(lockTypeNumber(l.type), off + 16);
  buf.writeUInt32LE(l.pid >>> 0, off + 20);
}

/** struct fuse_init_out */
export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  /** 64 bits: low half → flags, high half → flags2. */
  flags: bigint;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

export function writeInitOut(buf: Buffer, off: number, o: InitOut): void {
  buf.fill(0, off, off + INIT_OUT_SIZE);
  buf.writeUInt32LE(o.major, off);
  buf.writeUInt32LE(o.minor, off + 4);
  buf.writeUInt32LE(o.maxReadahead, off + 8);
  buf.writeUInt32LE(Number(o.flags & 0xffff_ffffn), off + 12);
  buf.writeUInt16LE(o.maxBackground, off + 16);
  buf.writeUInt16LE(o.congestionThreshold, off + 18);
  buf.writeUInt32LE(o.maxWrite, off + 20);
  buf.writeUInt32LE(o.timeGran, off + 24);
  buf.writeUInt16LE(o.maxPages, off + 28);
  buf.writeUInt16LE(0, off + 30);
  buf.writeUInt32LE(Number((o.flags >> 32n) & 0xffff_ffffn), off + 32);
}
