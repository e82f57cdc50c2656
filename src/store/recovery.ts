import { join } from 'node:path';
import { describeError, type Logger } from '../internal/index.js';
import { LtxDecoder, formatChecksum, formatTXID, type Header, type Pos, type VerifyResult } from '../ltx/index.js';
import type { JournalKind } from './client-locks.js';
import type { DB } from './db.js';
import { StoreError, isStoreError } from './errors.js';
import type { StoreLayout } from './layout.js';
import { fileChunks } from './ltx-io.js';
import { listLtxFiles, removeTempFiles, type LtxFileInfo } from './ltx-files.js';
import { hasDatabaseMagic, parseDatabaseHeader } from './sqlite-header.js';
import type { StoreFS } from './sys.js';
import { removeUndoLog } from './undo.js';
import { WAL_HEADER_SIZE, parseWalHeader } from './wal-format.js';

export interface RecoveryReport {
  pos: Pos;
  pageSize: number;
  pageN: number;
  rolledBackPages: number;
  /** WAL frames of recorded transactions copied into the database file. */
  checkpointedPages: number;
  /** LTX files applied to bring the database up to its position. */
  replayedTXIDs: bigint[];
  removedTempFiles: string[];
  quarantined: string | null;
}

/**
 * Startup recovery of one database, before any client can see it:
 *
 * 1. drop half-written `*.tmp` LTX files (never renamed, so never committed);
 * 2. verify the newest LTX file end to end: it defines the position;
 * 3. roll back a hot journal ourselves (SQLite would do it later, but our
 *    checksums must describe the file before any client touches it);
 * 4. in WAL mode, copy the frames of every transaction the LTX history
 *    recorded into the database file and remove the WAL. Frames past the
 *    newest recorded transaction were never acknowledged (SQLite was told
 *    their commit failed, or the crash came first): they are dropped;
 * 5. compute every page checksum from the file;
 * 6. if the database does not match the newest LTX file's post-apply
 *    checksum: when it matches an older file's, apply the files after it
 *    (a crash that lost writes the LTX history kept); otherwise re-apply
 *    the newest file (a crash between the LTX file and the journal's
 *    finalization, or torn pages of the last transaction). A mismatch after
 *    that is refused, with both checksums and the way out.
 */
export async function recoverDatabase(db: DB, layout: StoreLayout, sys: StoreFS, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    pos: { txid: 0n, postApplyChecksum: 0n },
    pageSize: 0,
    pageN: 0,
    rolledBackPages: 0,
    checkpointedPages: 0,
    replayedTXIDs: [],
    removedTempFiles: [],
    quarantined: null,
  };
  await db.openFiles();
  report.removedTempFiles = await removeTempFiles(sys, db.ltxDir);
  if (report.removedTempFiles.length > 0) log.info({ files: report.removedTempFiles }, 'removed unfinished LTX files');

  const files = await listLtxFiles(sys, db.ltxDir);
  const newest = files[files.length - 1];
  const verified = newest === undefined ? null : await verifyNewest(sys, db.name, newest);

  if (db.exists && !(await hasSQLiteHeader(db))) {
    if (verified !== null && verified.header.commit > 0) {
      throw new StoreError(
        'ERR_STORE_CORRUPT_DATABASE',
        `${db.name}: ${db.databasePath} is not a SQLite database, but the LTX history says it should be one at TXID ${formatTXID(verified.header.maxTXID)}. ` +
          `To recover: on a replica, delete ${layout.dbDir(db.name)} and restart (it re-snapshots from the primary); ` +
          `on the primary, restore the file from a replica (litefs export on the replica, then litefs import).`,
      );
    }
    report.quarantined = await quarantine(sys, layout, db);
    log.warn({ movedTo: report.quarantined }, 'database file is not SQLite and has no LTX history; moved it aside');
    await db.openFiles();
  }

  const rolledBack = await db.rollBackJournalAtStartup();
  report.rolledBackPages = rolledBack.pages;
  if (rolledBack.hot) log.info({ pages: rolledBack.pages, endReason: rolledBack.endReason }, 'rolled back hot journal');
  if (verified !== null && db.exists) {
    // Free pages the interrupted transaction reused are not in SQLite's
    // journal; put their committed bytes back too.
    const undone = await db.restoreUndo({ txid: verified.header.maxTXID, postApplyChecksum: verified.trailer.postApplyChecksum });
    if (undone > 0) log.info({ pages: undone }, 'restored committed pages from the undo log');
  }
  await removeUndoLog(sys, layout.undoPath(db.name));

  report.checkpointedPages = await recoverWal(db, sys, files, log);

  const geometry = await readGeometry(db);
  report.pageSize = geometry.pageSize || (verified?.header.pageSize ?? 0);
  report.pageN = geometry.pageCount;
  const sums = report.pageSize === 0 ? null : await db.loadChecksums(report.pageSize, geometry.pageCount);
  const pos: Pos =
    verified === null ? report.pos : { txid: verified.header.maxTXID, postApplyChecksum: verified.trailer.postApplyChecksum };
  db.setRecovered({
    pageSize: report.pageSize,
    pageN: geometry.pageCount,
    pos,
    timestamp: verified === null ? 0 : Number(verified.header.timestamp),
    sums,
    kind: geometry.kind,
  });
  report.pos = pos;
  if (verified === null || newest === undefined) return report;

  if (verified.header.commit === 0) {
    // Deleted database: a crash may have left the files behind the LTX.
    if (db.exists) await db.applyLtx(newest.path, { expectPrevious: false, kind: 'apply' });
    report.pageN = 0;
    return report;
  }
  if (geometry.pageCount === verified.header.commit && (await matches(db, verified.header.commit, verified.trailer.postApplyChecksum))) {
    return report;
  }

  const from = await olderMatch(sys, db, files.slice(0, -1));
  try {
    if (from !== null) {
      // The database is exactly at an older position: replay forward.
      db.setRecovered({ pageSize: report.pageSize, pageN: from.commit, pos: from.pos, timestamp: 0, sums, kind: geometry.kind });
      for (const f of files.slice(from.index + 1)) {
        await db.applyLtx(f.path, { kind: 'apply' });
        report.replayedTXIDs.push(f.maxTXID);
      }
    } else {
      await db.applyLtx(newest.path, { expectPrevious: false, kind: 'apply' });
      report.replayedTXIDs.push(verified.header.maxTXID);
    }
  } catch (err) {
    if (isStoreError(err, 'ERR_STORE_CHECKSUM_MISMATCH') || isStoreError(err, 'ERR_STORE_POSITION_MISMATCH')) {
      const actual = await db.currentChecksum(verified.header.commit).catch(() => 0n);
      throw new StoreError(
        'ERR_STORE_CHECKSUM_MISMATCH',
        `${db.name}: database checksum ${formatChecksum(actual)} does not match the post-apply checksum ${formatChecksum(verified.trailer.postApplyChecksum)} ` +
          `of its newest LTX file (TXID ${formatTXID(verified.header.maxTXID)}), even after re-applying it: the database file was changed outside litefs. ` +
          `To recover: on a replica, delete ${layout.dbDir(db.name)} and restart (it re-snapshots from the primary); ` +
          `on the primary, either restore the file from a replica (litefs export there, litefs import here), or accept the file as it is ` +
          `by moving ${db.ltxDir} aside (the next write starts a new history and replicas re-snapshot).`,
        { cause: err },
      );
    }
    throw err;
  }
  await db.syncAll();
  report.pageN = verified.header.commit;
  if (report.replayedTXIDs.length === 1) log.info({ txid: formatTXID(verified.header.maxTXID) }, 're-applied the newest LTX file');
  else
    log.info(
      { from: from === null ? null : formatTXID(from.pos.txid), txids: report.replayedTXIDs.map(formatTXID) },
      'replayed the LTX files after the position the database file was at',
    );
  return report;
}

/**
 * WAL-mode recovery: the frames of transactions the LTX history recorded
 * (same salts as the WAL header, up to the end of the newest such
 * transaction) go into the database file; everything else in the WAL is
 * dropped with it. Returns the pages copied.
 */
async function recoverWal(db: DB, sys: StoreFS, files: readonly LtxFileInfo[], log: Logger): Promise<number> {
  const wal = db.walFile;
  if (wal === null) return 0;
  const header = parseWalHeader(await wal.read(WAL_HEADER_SIZE, 0));
  let cut: { end: number; commit: number } | null = null;
  if (header !== null) {
    for (let i = files.length - 1; i >= 0; i--) {
      const h = await readHeader(sys, files[i]!.path).catch(() => null);
      if (h === null || h.walSize === 0n) continue;
      if (h.walSalt1 === header.salt1 && h.walSalt2 === header.salt2) {
        cut = { end: Number(h.walOffset + h.walSize), commit: h.commit };
        break;
      }
    }
  }
  const size = await wal.size();
  if (cut === null) {
    if (size > WAL_HEADER_SIZE) log.warn({ bytes: size }, 'WAL holds no recorded transaction; dropping it');
    await db.discardWalAtStartup();
    return 0;
  }
  if (size > cut.end) log.warn({ bytes: size - cut.end }, 'dropping WAL frames past the last recorded transaction');
  const pages = await db.checkpointWalAtStartup(cut.end, cut.commit);
  if (pages > 0) log.info({ pages }, 'copied recorded WAL transactions into the database file');
  return pages;
}

/** The newest older LTX file whose post-apply checksum the database has now. */
async function olderMatch(
  sys: StoreFS,
  db: DB,
  older: readonly LtxFileInfo[],
): Promise<{ index: number; pos: Pos; commit: number } | null> {
  for (let i = older.length - 1; i >= 0 && i >= older.length - 1000; i--) {
    const f = older[i]!;
    const end = await readEnd(sys, f.path).catch(() => null);
    if (end === null || end.header.commit === 0) continue;
    if (await matches(db, end.header.commit, end.postApply)) {
      return { index: i, pos: { txid: end.header.maxTXID, postApplyChecksum: end.postApply }, commit: end.header.commit };
    }
  }
  return null;
}

async function readHeader(sys: StoreFS, path: string): Promise<Header> {
  const f = await sys.open(path, 'r');
  if (f === null) throw new StoreError('ERR_STORE_CORRUPT_LTX', `${path}: missing`);
  const dec = new LtxDecoder(fileChunks(f));
  try {
    return await dec.decodeHeader();
  } finally {
    await dec.destroy();
    await f.close();
  }
}

/** An LTX file's header and post-apply checksum (the trailer's first 8 bytes), without decoding its pages. */
async function readEnd(sys: StoreFS, path: string): Promise<{ header: Header; postApply: bigint }> {
  const header = await readHeader(sys, path);
  const f = await sys.open(path, 'r');
  if (f === null) throw new StoreError('ERR_STORE_CORRUPT_LTX', `${path}: missing`);
  try {
    const size = await f.size();
    const trailer = await f.read(16, size - 16);
    return { header, postApply: trailer.readBigUInt64BE(0) };
  } finally {
    await f.close();
  }
}

async function verifyNewest(sys: StoreFS, name: string, file: LtxFileInfo): Promise<VerifyResult> {
  let v: VerifyResult;
  const f = await sys.open(file.path, 'r');
  if (f === null) throw new StoreError('ERR_STORE_CORRUPT_LTX', `${name}: ${file.path} vanished`);
  try {
    const dec = new LtxDecoder(fileChunks(f), { strict: true });
    try {
      const header = await dec.decodeHeader();
      const pgnos: number[] = [];
      for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) pgnos.push(p.pgno);
      const trailer = await dec.close();
      v = { header, trailer, pageCount: pgnos.length, pgnos, size: dec.bytesRead };
    } finally {
      await dec.destroy();
    }
  } catch (err) {
    throw new StoreError(
      'ERR_STORE_CORRUPT_LTX',
      `${name}: the newest LTX file ${file.path} is invalid (${describeError(err)}); refusing to start on a history that cannot be checked. ` +
        `Move the file aside to fall back to the previous one.`,
      { cause: err },
    );
  } finally {
    await f.close();
  }
  if (v.header.minTXID !== file.minTXID || v.header.maxTXID !== file.maxTXID) {
    throw new StoreError(
      'ERR_STORE_CORRUPT_LTX',
      `${name}: ${file.path} holds TXIDs ${formatTXID(v.header.minTXID)}-${formatTXID(v.header.maxTXID)}, not what its name says`,
    );
  }
  return v;
}

async function hasSQLiteHeader(db: DB): Promise<boolean> {
  if ((await db.databaseSize()) === 0) return true;
  const head = await db.readHeader();
  if (head.length < 100 || !hasDatabaseMagic(head)) return false;
  try {
    parseDatabaseHeader(head);
    return true;
  } catch {
    return false;
  }
}

async function readGeometry(db: DB): Promise<{ pageSize: number; pageCount: number; kind: JournalKind }> {
  const head = await db.readHeader();
  if (head.length < 100) return { pageSize: 0, pageCount: 0, kind: 'rollback' };
  const h = parseDatabaseHeader(head);
  // Files last written by SQLite < 3.7.0 may carry a stale in-header count.
  const pageCount = h.pageCountValid ? h.pageCount : Math.floor((await db.databaseSize()) / h.pageSize);
  return { pageSize: h.pageSize, pageCount, kind: head[19] === 2 ? 'wal' : 'rollback' };
}

async function matches(db: DB, commit: number, postApply: bigint): Promise<boolean> {
  try {
    return (await db.currentChecksum(commit)) === postApply;
  } catch {
    return false;
  }
}

/** Moves a database's file aside under <data>/quarantine instead of deleting it. */
async function quarantine(sys: StoreFS, layout: StoreLayout, db: DB): Promise<string> {
  await db.close();
  const dir = join(layout.quarantineDir, `${db.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await sys.mkdirs(dir);
  const to = join(dir, 'database');
  await sys.rename(db.databasePath, to);
  return to;
}
