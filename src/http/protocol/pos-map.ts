import { ByteReader, type ByteSource } from './byte-reader.js';
import { MAX_DATABASE_NAME_BYTES, decodeDatabaseName, encodeDatabaseName } from './db-name.js';
import { StreamError } from './errors.js';

/**
 * A replication position. Structurally the same as the LTX codec's Pos so the
 * two can be unified without touching callers.
 */
export interface StreamPos {
  txid: bigint;
  postApplyChecksum: bigint;
}

/** Database name → position, as sent in the `/stream` request body. */
export type PosMap = Map<string, StreamPos>;

/**
 * Default cap on entries. LiteFS sets none; a node serving this many
 * databases is far outside its design, and the cap bounds what one request
 * can make the server allocate.
 */
export const DEFAULT_MAX_POS_MAP_ENTRIES = 65_536;

export interface PosMapLimits {
  /** Maximum number of entries; default DEFAULT_MAX_POS_MAP_ENTRIES. */
  maxEntries?: number;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const ENTRY_FIXED_BYTES = 4 + 8 + 8;

/** Largest valid encoding for `maxEntries` entries: a body-size cap for HTTP servers. */
export function maxPosMapBytes(maxEntries = DEFAULT_MAX_POS_MAP_ENTRIES): number {
  return 4 + maxEntries * (ENTRY_FIXED_BYTES + MAX_DATABASE_NAME_BYTES);
}

function checkU64(v: bigint, field: string, name: string): void {
  if (v < 0n || v > U64_MAX) {
    throw new StreamError('ERR_STREAM_BAD_VALUE', `${field} ${v} of database ${JSON.stringify(name)} is not a u64`);
  }
}

/**
 * Encodes like LiteFS v0.3+: u32 count, then per database in ascending
 * UTF-8 byte order (Go's string order): u32 nameLen, name, u64 TXID,
 * u64 post-apply checksum. All big-endian.
 */
export function encodePosMap(map: ReadonlyMap<string, StreamPos>): Buffer {
  const entries = [...map].map(([name, pos]) => {
    checkU64(pos.txid, 'TXID', name);
    checkU64(pos.postApplyChecksum, 'post-apply checksum', name);
    return { bytes: encodeDatabaseName(name), pos };
  });
  entries.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  const size = entries.reduce((n, e) => n + ENTRY_FIXED_BYTES + e.bytes.length, 4);
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt32BE(entries.length, 0);
  for (const e of entries) {
    o = out.writeUInt32BE(e.bytes.length, o);
    o += e.bytes.copy(out, o);
    o = out.writeBigUInt64BE(e.pos.txid, o);
    o = out.writeBigUInt64BE(e.pos.postApplyChecksum, o);
  }
  return out;
}

function checkCount(count: number, maxEntries: number): void {
  if (count > maxEntries) {
    throw new StreamError('ERR_STREAM_TOO_MANY_ENTRIES', `position map count ${count} exceeds limit ${maxEntries}`);
  }
}

function checkNameLen(nameLen: number, i: number): void {
  if (nameLen > MAX_DATABASE_NAME_BYTES) {
    throw new StreamError(
      'ERR_STREAM_FIELD_TOO_LONG',
      `position map entry ${i} name length ${nameLen} exceeds limit ${MAX_DATABASE_NAME_BYTES}`,
    );
  }
}

function addEntry(map: PosMap, nameBytes: Buffer, fixed: Buffer): void {
  const name = decodeDatabaseName(nameBytes);
  if (map.has(name)) {
    throw new StreamError('ERR_STREAM_DUPLICATE_NAME', `position map lists database ${JSON.stringify(name)} twice`);
  }
  map.set(name, { txid: fixed.readBigUInt64BE(0), postApplyChecksum: fixed.readBigUInt64BE(8) });
}

/**
 * Reads a position map from a request body. The count is checked before any
 * entry is read, each name length before the name is buffered, and the body
 * must end right after the last entry. Entries need not be sorted (Go decodes
 * into a map), but a duplicate name is an error rather than last-wins.
 */
export async function readPosMap(source: ByteSource, limits: PosMapLimits = {}): Promise<PosMap> {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_POS_MAP_ENTRIES;
  const r = new ByteReader(source);
  try {
    const count = (await r.readExact(4, 'position map count')).readUInt32BE(0);
    checkCount(count, maxEntries);
    const map: PosMap = new Map();
    for (let i = 0; i < count; i++) {
      const nameLen = (await r.readExact(4, `position map entry ${i} name length`)).readUInt32BE(0);
      checkNameLen(nameLen, i);
      const nameBytes = await r.readExact(nameLen, `position map entry ${i} name`);
      addEntry(map, nameBytes, await r.readExact(16, `position map entry ${i} position`));
    }
    if (!(await r.atEnd())) {
      throw new StreamError('ERR_STREAM_TRAILING_DATA', `position map has trailing bytes after byte ${r.offset}`);
    }
    return map;
  } finally {
    await r.close();
  }
}

/** Decodes a position map held in memory; same rules as readPosMap. */
export function decodePosMap(buf: Uint8Array, limits: PosMapLimits = {}): PosMap {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_POS_MAP_ENTRIES;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  const take = (n: number, what: string): Buffer => {
    if (b.length - o < n) {
      throw new StreamError('ERR_STREAM_TRUNCATED', `position map ended inside ${what}: got ${b.length - o} of ${n} bytes at byte ${o}`);
    }
    o += n;
    return b.subarray(o - n, o);
  };
  const count = take(4, 'position map count').readUInt32BE(0);
  checkCount(count, maxEntries);
  const map: PosMap = new Map();
  for (let i = 0; i < count; i++) {
    const nameLen = take(4, `position map entry ${i} name length`).readUInt32BE(0);
    checkNameLen(nameLen, i);
    const nameBytes = take(nameLen, `position map entry ${i} name`);
    addEntry(map, nameBytes, take(16, `position map entry ${i} position`));
  }
  if (o !== b.length) {
    throw new StreamError('ERR_STREAM_TRAILING_DATA', `position map has ${b.length - o} trailing bytes after byte ${o}`);
  }
  return map;
}
