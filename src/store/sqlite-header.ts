import { CodedError } from '../internal/index.js';

/** Size of the header at the start of page 1 of every SQLite database. */
export const SQLITE_HEADER_SIZE = 100;

/** "SQLite format 3" followed by a NUL. */
export const SQLITE_HEADER_MAGIC: Buffer = Buffer.from('SQLite format 3\0', 'latin1');

/** Byte offset of SQLite's PENDING lock byte; the page holding it is never used. */
export const PENDING_BYTE = 0x40000000;

export type SQLiteHeaderErrorCode = 'ERR_SQLITE_HEADER_SHORT' | 'ERR_SQLITE_HEADER_MAGIC' | 'ERR_SQLITE_HEADER_PAGE_SIZE';

export class SQLiteHeaderError extends CodedError<SQLiteHeaderErrorCode> {}

export type TextEncoding = 'utf-8' | 'utf-16le' | 'utf-16be';

/** The fields of the 100-byte database header that the store may need. */
export interface DatabaseHeader {
  /** Bytes per page, 512..65536 (the raw value 1 means 65536). */
  pageSize: number;
  /** File format write version (offset 18): 1 legacy/rollback, 2 WAL. */
  writeVersion: number;
  /** File format read version (offset 19): 1 legacy/rollback, 2 WAL. */
  readVersion: number;
  /** True when both versions are 2: the database is in WAL mode. */
  wal: boolean;
  /** Unused bytes at the end of each page (offset 20). */
  reservedBytes: number;
  /** Incremented by every rollback-mode commit (offset 24). */
  fileChangeCounter: number;
  /** "In-header database size" in pages (offset 28); what LiteFS uses as the commit size. */
  pageCount: number;
  /**
   * SQLite trusts pageCount only when it is non-zero and the
   * version-valid-for number equals the change counter (legacy writers did
   * not maintain it).
   */
  pageCountValid: boolean;
  /** First freelist trunk page (offset 32), 0 if none. */
  freelistTrunk: number;
  /** Total freelist pages (offset 36). */
  freelistCount: number;
  /** Schema cookie (offset 40): changes with every schema change. */
  schemaCookie: number;
  /** Schema format number (offset 44), 1..4. */
  schemaFormat: number;
  /** Suggested cache size (offset 48), signed. */
  defaultCacheSize: number;
  /** Largest root b-tree page (offset 52) when auto/incremental vacuum is on, else 0. */
  autoVacuumTopRoot: number;
  /** Text encoding (offset 56), or null when unset (0, a brand-new database) or invalid. */
  textEncoding: TextEncoding | null;
  /** user_version pragma (offset 60), signed. */
  userVersion: number;
  /** Non-zero for incremental vacuum (offset 64). */
  incrementalVacuum: number;
  /** application_id pragma (offset 68), signed. */
  applicationId: number;
  /** Change counter value when the version number was stored (offset 92). */
  versionValidFor: number;
  /** SQLITE_VERSION_NUMBER of the last writer (offset 96). */
  sqliteVersion: number;
}

/** True for a power of two in 512..65536. */
export function isValidPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** Decodes the u16 page-size field: 1 stands for 65536. Throws if invalid. */
export function decodePageSize(raw: number): number {
  const size = raw === 1 ? 65536 : raw;
  if (!isValidPageSize(size)) {
    throw new SQLiteHeaderError('ERR_SQLITE_HEADER_PAGE_SIZE', `page size field ${raw} is not a power of two in 512..65536`);
  }
  return size;
}

/** Page number of the page holding PENDING_BYTE (never stored, never journaled). */
export function lockPageNumber(pageSize: number): number {
  return Math.floor(PENDING_BYTE / pageSize) + 1;
}

/** True when `buf` begins with the SQLite header magic. */
export function hasDatabaseMagic(buf: Uint8Array): boolean {
  return buf.length >= 16 && Buffer.from(buf.buffer, buf.byteOffset, 16).equals(SQLITE_HEADER_MAGIC);
}

const ENCODINGS: Record<number, TextEncoding> = { 1: 'utf-8', 2: 'utf-16le', 3: 'utf-16be' };

/**
 * Parses the first 100 bytes of a database file (or page 1). A bad magic or
 * short buffer means the file is not a SQLite database, which LiteFS treats
 * as "wipe and start empty" at startup.
 */
export function parseDatabaseHeader(buf: Uint8Array): DatabaseHeader {
  if (buf.length < SQLITE_HEADER_SIZE) {
    throw new SQLiteHeaderError('ERR_SQLITE_HEADER_SHORT', `database header is ${buf.length} bytes, need ${SQLITE_HEADER_SIZE}`);
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, SQLITE_HEADER_SIZE);
  if (!hasDatabaseMagic(b)) {
    throw new SQLiteHeaderError(
      'ERR_SQLITE_HEADER_MAGIC',
      `database header magic is ${JSON.stringify(b.toString('latin1', 0, 16))}, expected "SQLite format 3\\0"`,
    );
  }
  const writeVersion = b[18] ?? 0;
  const readVersion = b[19] ?? 0;
  const fileChangeCounter = b.readUInt32BE(24);
  const pageCount = b.readUInt32BE(28);
  const versionValidFor = b.readUInt32BE(92);
  return {
    pageSize: decodePageSize(b.readUInt16BE(16)),
    writeVersion,
    readVersion,
    wal: writeVersion === 2 && readVersion === 2,
    reservedBytes: b[20] ?? 0,
    fileChangeCounter,
    pageCount,
    pageCountValid: pageCount !== 0 && versionValidFor === fileChangeCounter,
    freelistTrunk: b.readUInt32BE(32),
    freelistCount: b.readUInt32BE(36),
    schemaCookie: b.readUInt32BE(40),
    schemaFormat: b.readUInt32BE(44),
    defaultCacheSize: b.readInt32BE(48),
    autoVacuumTopRoot: b.readUInt32BE(52),
    textEncoding: ENCODINGS[b.readUInt32BE(56)] ?? null,
    userVersion: b.readInt32BE(60),
    incrementalVacuum: b.readUInt32BE(64),
    applicationId: b.readInt32BE(68),
    versionValidFor,
    sqliteVersion: b.readUInt32BE(96),
  };
}
