import type { DirEntry, DirEntryPlus } from '../types.js';
import { ENTRY_OUT_SIZE, writeEntryOut } from './encode.js';

/** struct fuse_dirent without its name: ino, off, namelen, type. */
const DIRENT_HEADER = 24;

function align8(n: number): number {
  return (n + 7) & ~7;
}

export interface PackedDirents {
  /** The READDIR/READDIRPLUS reply payload, at most the requested size. */
  payload: Buffer;
  /** How many entries (from the front of the list) fit. */
  count: number;
}

/**
 * Packs entries as the kernel expects: each record 8-byte aligned, `off` of a
 * record being the cookie the kernel sends back to continue after it. Stops
 * at the first entry that does not fit in `size`; an empty payload tells the
 * kernel the directory has no more entries.
 */
export function packDirents(entries: readonly DirEntry[], startOffset: bigint, size: number): PackedDirents {
  return pack(entries, startOffset, size, false);
}

/** Like packDirents, with a fuse_entry_out before each dirent (READDIRPLUS). */
export function packDirentsPlus(entries: readonly DirEntryPlus[], startOffset: bigint, size: number): PackedDirents {
  return pack(entries, startOffset, size, true);
}

function pack(entries: readonly (DirEntry | DirEntryPlus)[], startOffset: bigint, size: number, plus: boolean): PackedDirents {
  const buf = Buffer.alloc(size);
  let pos = 0;
  let count = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const nameLen = Buffer.byteLength(e.name, 'utf8');
    const rec = align8((plus ? ENTRY_OUT_SIZE : 0) + DIRENT_HEADER + nameLen);
    if (pos + rec > size) break;
    if (plus) {
      writeEntryOut(buf, pos, (e as DirEntryPlus).entry);
      pos += ENTRY_OUT_SIZE;
    }
    buf.writeBigUInt64LE(e.ino, pos);
    buf.writeBigUInt64LE(e.nextOffset ?? startOffset + BigInt(i + 1), pos + 8);
    buf.writeUInt32LE(nameLen, pos + 16);
    buf.writeUInt32LE((e.mode >>> 12) & 0xf, pos + 20);
    buf.write(e.name, pos + DIRENT_HEADER, nameLen, 'utf8');
    pos = align8(pos + DIRENT_HEADER + nameLen);
    count++;
  }
  return { payload: buf.subarray(0, pos), count };
}
