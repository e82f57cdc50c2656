import { OUT_HEADER_SIZE, writeOutHeader } from './encode.js';
import { EXPIRE_ONLY } from './flags.js';
import { NotifyCode } from './opcodes.js';

/*
 * Unsolicited notifications: an out header with unique 0 and the notify code
 * in the error field, followed by the notification struct. Names are
 * followed by a NUL, which the kernel reads (namelen + 1 bytes).
 */

/** FUSE_NOTIFY_INVAL_INODE: offset < 0 drops only attributes; length <= 0 means to end of file. */
export function encodeInvalInode(nodeid: bigint, offset: bigint, length: bigint): Buffer {
  const buf = Buffer.alloc(OUT_HEADER_SIZE + 24);
  writeOutHeader(buf, buf.length, NotifyCode.INVAL_INODE, 0n);
  buf.writeBigUInt64LE(nodeid, 16);
  buf.writeBigInt64LE(offset, 24);
  buf.writeBigInt64LE(length, 32);
  return buf;
}

/** FUSE_NOTIFY_INVAL_ENTRY */
export function encodeInvalEntry(parent: bigint, name: string, expireOnly: boolean): Buffer {
  const nameLen = Buffer.byteLength(name, 'utf8');
  const buf = Buffer.alloc(OUT_HEADER_SIZE + 16 + nameLen + 1);
  writeOutHeader(buf, buf.length, NotifyCode.INVAL_ENTRY, 0n);
  buf.writeBigUInt64LE(parent, 16);
  buf.writeUInt32LE(nameLen, 24);
  buf.writeUInt32LE(expireOnly ? EXPIRE_ONLY : 0, 28);
  buf.write(name, 32, 'utf8');
  return buf;
}

/** FUSE_NOTIFY_DELETE: the entry `name` in `parent`, which pointed at `child`, is gone. */
export function encodeDelete(parent: bigint, child: bigint, name: string): Buffer {
  const nameLen = Buffer.byteLength(name, 'utf8');
  const buf = Buffer.alloc(OUT_HEADER_SIZE + 24 + nameLen + 1);
  writeOutHeader(buf, buf.length, NotifyCode.DELETE, 0n);
  buf.writeBigUInt64LE(parent, 16);
  buf.writeBigUInt64LE(child, 24);
  buf.writeUInt32LE(nameLen, 32);
  buf.write(name, 40, 'utf8');
  return buf;
}

/** FUSE_NOTIFY_STORE header; the data follows as a second chunk (writev). */
export function encodeStoreHeader(nodeid: bigint, offset: bigint, size: number): Buffer {
  const buf = Buffer.alloc(OUT_HEADER_SIZE + 24);
  writeOutHeader(buf, buf.length + size, NotifyCode.STORE, 0n);
  buf.writeBigUInt64LE(nodeid, 16);
  buf.writeBigUInt64LE(offset, 24);
  buf.writeUInt32LE(size, 32);
  return buf;
}
