/**
 * Replacing a database with an uploaded SQLite file (`litefs import`, LiteFS
 * §7.3), as one transaction: one LTX file at TXID pos+1 holding every page,
 * written durably, then applied through the database's checksum-tracking
 * path so replicas receive it like any commit.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError, silentLogger, type Logger } from '../internal/index.js';
import {
  DatabaseChecksum,
  formatPos,
  HEADER_FLAG_COMPRESS_LZ4,
  lockPgno,
  LtxEncoder,
  ltxFilename,
  LtxFileSink,
  newHeader,
  type Header,
  type Pos,
} from '../ltx/index.js';
import type { DB } from './db.js';
import { isHotJournalHeader } from './journal.js';
import { LockError } from './rwmutex.js';
import { SQLITE_HEADER_SIZE, SQLiteHeaderError, parseDatabaseHeader } from './sqlite-header.js';

export type ImportErrorCode =
  /** The upload is empty, too short, or lacks the SQLite magic. */
  | 'ERR_IMPORT_NOT_SQLITE'
  /** A SQLite header this store cannot take as is (page size, format bytes, size). */
  | 'ERR_IMPORT_INVALID'
  /** Larger than the data volume can hold (spool + LTX file + database). */
  | 'ERR_IMPORT_TOO_LARGE'
  | 'ERR_IMPORT_NOT_PRIMARY'
  /** The existing database has another page size. */
  | 'ERR_IMPORT_PAGE_SIZE'
  /** SQLite clients kept the database locked past the timeout. */
  | 'ERR_IMPORT_BUSY'
  /** The LTX file is durable but applying it failed (disk trouble). */
  | 'ERR_IMPORT_APPLY';

export class ImportError extends CodedError<ImportErrorCode> {}

/** What the first 100 bytes of an upload say, before its size is known. */
export interface ImportHeader {
  pageSize: number;
  /** Bytes 18/19 are 2/2: a WAL-mode file, converted to rollback mode on import. */
  wal: boolean;
  /** In-header page count (offset 28) and whether SQLite would trust it. */
  headerPageCount: number;
  headerPageCountValid: boolean;
  changeCounter: number;
  schemaCookie: number;
}

/**
 * Checks the SQLite header of an upload. Throws ImportError naming the
 * offending field. WAL-mode files (18/19 = 2/2) are accepted and converted:
 * litefs-ts replicates rollback-journal databases only, and a WAL file's
 * main database image is a valid rollback-mode database once those two
 * bytes say 1 (what `PRAGMA journal_mode=DELETE` does after a checkpoint).
 */
export function inspectImportHeader(head: Uint8Array): ImportHeader {
  let h;
  try {
    h = parseDatabaseHeader(head);
  } catch (err) {
    if (err instanceof SQLiteHeaderError) {
      if (err.code === 'ERR_SQLITE_HEADER_PAGE_SIZE') throw new ImportError('ERR_IMPORT_INVALID', `invalid SQLite header: ${err.message}`);
      if (err.code === 'ERR_SQLITE_HEADER_SHORT') {
        throw new ImportError(
          'ERR_IMPORT_NOT_SQLITE',
          `not a SQLite database: ${head.length} bytes is shorter than the 100-byte SQLite header`,
        );
      }
      throw new ImportError('ERR_IMPORT_NOT_SQLITE', 'not a SQLite database: the file does not start with "SQLite format 3\\0"');
    }
    throw err;
  }
  const versions = `${h.writeVersion}/${h.readVersion}`;
  if (versions !== '1/1' && versions !== '2/2') {
    throw new ImportError(
      'ERR_IMPORT_INVALID',
      `invalid SQLite header: file format versions (bytes 18/19) are ${versions}; expected 1/1 (rollback journal) or 2/2 (WAL)`,
    );
  }
  const fractions = `${head[21]}/${head[22]}/${head[23]}`;
  if (fractions !== '64/32/32') {
    throw new ImportError(
      'ERR_IMPORT_INVALID',
      `invalid SQLite header: payload fractions (bytes 21-23) are ${fractions}; SQLite requires 64/32/32`,
    );
  }
  if (h.pageSize - h.reservedBytes < 480) {
    throw new ImportError(
      'ERR_IMPORT_INVALID',
      `invalid SQLite header: ${h.reservedBytes} reserved bytes per page leave less than 480 usable bytes of a ${h.pageSize}-byte page`,
    );
  }
  return {
    pageSize: h.pageSize,
    wal: h.wal,
    headerPageCount: h.pageCount,
    headerPageCountValid: h.pageCountValid,
    changeCounter: h.fileChangeCounter,
    schemaCookie: h.schemaCookie,
  };
}

/** The page count of an upload of `size` bytes; throws when header and size disagree. */
export function importPageCount(h: ImportHeader, size: number): number {
  if (size % h.pageSize !== 0) {
    throw new ImportError('ERR_IMPORT_INVALID', `file size ${size} bytes is not a multiple of its page size ${h.pageSize}`);
  }
  const n = size / h.pageSize;
  if (h.headerPageCountValid && h.headerPageCount !== n) {
    throw new ImportError(
      'ERR_IMPORT_INVALID',
      `the SQLite header says ${h.headerPageCount} pages but the file holds ${n} pages of ${h.pageSize} bytes`,
    );
  }
  if (n > 0xffffffff) throw new ImportError('ERR_IMPORT_INVALID', `${n} pages is more than SQLite can address`);
  return n;
}

/** Space kept free on the data volume whatever the upload. */
export const IMPORT_DISK_RESERVE = 64 << 20;

/**
 * Largest upload the data volume can take: at the peak an import holds the
 * spooled upload, the LTX file (page data plus 4 bytes per page, more than
 * the upload if incompressible) and up to the upload's size again in
 * database growth, so a third of the free space, minus a reserve.
 */
export function importSizeLimit(freeBytes: number): number {
  return Math.max(0, Math.floor((freeBytes - IMPORT_DISK_RESERVE) / 3));
}

export interface ImportOptions {
  nodeID: bigint;
  /** Checked again once the write lock is held: the node may have lost its lease meanwhile. */
  isPrimary: () => boolean;
  /** Longest wait for SQLite clients to finish (default 30 s). */
  lockTimeoutMs?: number;
  logger?: Logger;
}

export interface ImportResult {
  pos: Pos;
  pageSize: number;
  pageCount: number;
  convertedFromWAL: boolean;
  ltxPath: string;
  /** Change counter and schema cookie written into page 1. */
  changeCounter: number;
  schemaCookie: number;
}

/** Reads per LTX page batch while copying the upload. */
const READ_CHUNK = 1 << 20;

/**
 * Replaces `db` with the SQLite file at `uploadPath` (already spooled to
 * local disk) under the database's internal write lock: no SQLite client is
 * in a transaction and readers have drained. A hot journal left by a
 * crashed writer is rolled back first, so no client can later "recover" it
 * onto the imported pages.
 *
 * Page 1 is changed on the way in. SQLite keeps a connection's page cache
 * while bytes 24..39 of the file (change counter, page count, freelist) are
 * unchanged, and its parsed schema while the schema cookie (offset 40) is.
 * LiteFS sets both to 0, which works once but not for a second import of a
 * same-sized file (the counters would be 0 again, equal to what connections
 * cached after the first). Here both become one more than the larger of the
 * old database's and the upload's value, so they differ from anything a
 * connection can hold and stay monotonic for SQLite's own increments. The
 * version-valid-for number (offset 92) gets the same value and the page
 * count (offset 28) is set, so SQLite trusts the in-header size.
 */
export async function importDatabase(db: DB, uploadPath: string, opts: ImportOptions): Promise<ImportResult> {
  const log = (opts.logger ?? silentLogger).child({ db: db.name });
  const { size } = await stat(uploadPath);
  const head = await readHead(uploadPath);
  const h = inspectImportHeader(head);
  const pageCount = importPageCount(h, size);

  try {
    return await db.runExclusive(() => importLocked(db, uploadPath, opts, h, pageCount, log), opts.lockTimeoutMs ?? 30_000);
  } catch (err) {
    if (err instanceof LockError) {
      throw new ImportError('ERR_IMPORT_BUSY', `${db.name}: SQLite clients kept the database busy: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

async function importLocked(
  db: DB,
  uploadPath: string,
  opts: ImportOptions,
  h: ImportHeader,
  pageCount: number,
  log: Logger,
): Promise<ImportResult> {
  {
    if (!opts.isPrimary())
      throw new ImportError('ERR_IMPORT_NOT_PRIMARY', 'this node stopped being the primary before the import could start');
    if (db.journalExists && isHotJournalHeader(await db.readJournal(8, 0))) {
      await db.rollbackLeftoverJournal();
      log.warn('rolled back a hot journal left by a crashed writer before importing');
    }
    if (db.exists && db.pageN > 0 && db.pageSize !== h.pageSize) {
      throw new ImportError(
        'ERR_IMPORT_PAGE_SIZE',
        `${db.name}: the upload has ${h.pageSize}-byte pages but the database has ${db.pageSize}-byte pages; delete the database first to change its page size`,
      );
    }
    const old = db.exists && db.pageN > 0 ? await db.readDatabase(SQLITE_HEADER_SIZE, 0) : null;
    const oldCounter = old !== null && old.length >= SQLITE_HEADER_SIZE ? old.readUInt32BE(24) : 0;
    const oldCookie = old !== null && old.length >= SQLITE_HEADER_SIZE ? old.readUInt32BE(40) : 0;
    const changeCounter = bump(Math.max(oldCounter, h.changeCounter));
    const schemaCookie = bump(Math.max(oldCookie, h.schemaCookie));

    const pos = db.pos;
    const txid = pos.txid + 1n;
    const header = newHeader({
      flags: db.compress ? HEADER_FLAG_COMPRESS_LZ4 : 0,
      pageSize: h.pageSize,
      commit: pageCount,
      minTXID: txid,
      maxTXID: txid,
      timestamp: BigInt(Date.now()),
      preApplyChecksum: txid === 1n ? 0n : pos.postApplyChecksum,
      nodeID: opts.nodeID,
    });
    const ltxPath = join(db.ltxDir, ltxFilename(txid, txid));
    const patch = (page1: Buffer): void => {
      if (h.wal) {
        page1[18] = 1;
        page1[19] = 1;
      }
      page1.writeUInt32BE(changeCounter, 24);
      page1.writeUInt32BE(pageCount, 28);
      page1.writeUInt32BE(schemaCookie, 40);
      page1.writeUInt32BE(changeCounter, 92);
    };
    await writeImportLtx(ltxPath, header, uploadPath, patch);
    log.info(
      { txid: txid.toString(16).padStart(16, '0'), pages: pageCount, pageSize: h.pageSize, convertedFromWAL: h.wal },
      'import written as one LTX file',
    );

    try {
      await db.applyLtx(ltxPath, { kind: 'commit', clientsLocked: true });
      await db.syncAll();
    } catch (err) {
      log.error({ err, ltxPath }, 'applying the imported LTX file failed; restarting the node re-applies it');
      throw new ImportError(
        'ERR_IMPORT_APPLY',
        `${db.name}: the import is durable in ${ltxPath} but applying it failed (${err instanceof Error ? err.message : String(err)}); restart the node to re-apply it`,
        { cause: err },
      );
    }
    log.info({ pos: formatPos(db.pos) }, 'database imported');
    return { pos: db.pos, pageSize: h.pageSize, pageCount, convertedFromWAL: h.wal, ltxPath, changeCounter, schemaCookie };
  }
}

/** n+1 as a u32, never 0 (0 is what a brand-new, empty database file reads as). */
function bump(n: number): number {
  const next = (n + 1) >>> 0;
  return next === 0 ? 1 : next;
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(SQLITE_HEADER_SIZE);
    const { bytesRead } = await fh.read(buf, 0, SQLITE_HEADER_SIZE, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Encodes the upload as one LTX file at `path` (tmp file, fsync, rename,
 * directory fsync): every page in order, the lock page skipped, page 1
 * patched, the post-apply checksum computed on the way.
 */
async function writeImportLtx(path: string, header: Header, uploadPath: string, patchPage1: (page1: Buffer) => void): Promise<void> {
  const ps = header.pageSize;
  const lock = lockPgno(ps);
  const sum = new DatabaseChecksum(ps);
  const perRead = Math.max(1, Math.floor(READ_CHUNK / ps));
  const buf = Buffer.allocUnsafe(perRead * ps);
  const src = await open(uploadPath, 'r');
  const sink = await LtxFileSink.create(path);
  try {
    const enc = new LtxEncoder(sink);
    await enc.encodeHeader(header);
    for (let first = 1; first <= header.commit; first += perRead) {
      const n = Math.min(perRead, header.commit - first + 1);
      const want = n * ps;
      let got = 0;
      while (got < want) {
        const { bytesRead } = await src.read(buf, got, want - got, (first - 1) * ps + got);
        if (bytesRead === 0)
          throw new ImportError('ERR_IMPORT_INVALID', `the upload ended at page ${first + Math.floor(got / ps)} of ${header.commit}`);
        got += bytesRead;
      }
      if (first === 1) patchPage1(buf);
      for (let k = 0; k < n; k++) {
        const pgno = first + k;
        if (pgno === lock) continue;
        const page = buf.subarray(k * ps, (k + 1) * ps);
        sum.addPage(pgno, page);
        await enc.encodePage(pgno, page);
      }
    }
    await enc.close(sum.value);
    await sink.commit();
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await src.close();
  }
}
