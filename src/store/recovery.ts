import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, type Logger } from '../internal/index.js';
import { formatChecksum, formatTXID, verifyLtxFile, type Pos, type VerifyResult } from '../ltx/index.js';
import type { DB } from './db.js';
import { StoreError, isStoreError } from './errors.js';
import { rollbackJournalFile } from './journal.js';
import type { StoreLayout } from './layout.js';
import { listLtxFiles, removeTempFiles, type LtxFileInfo } from './ltx-files.js';
import { removeUndoLog } from './undo.js';
import { hasDatabaseMagic, parseDatabaseHeader } from './sqlite-header.js';

export interface RecoveryReport {
  pos: Pos;
  pageSize: number;
  pageN: number;
  rolledBackPages: number;
  reappliedTXID: bigint | null;
  removedTempFiles: string[];
  quarantined: string | null;
}

/**
 * Startup recovery of one database (LiteFS §4.2, rollback-journal modes):
 *
 * 1. drop half-written `*.tmp` LTX files (never renamed, so never committed);
 * 2. verify the newest LTX file end to end: it defines the position;
 * 3. roll back a hot journal ourselves (SQLite would do it later, but our
 *    checksums must describe the file before any client touches it);
 * 4. compute every page checksum from the file;
 * 5. if the database does not match the newest LTX file's post-apply
 *    checksum, re-apply that file: this covers a crash between writing the
 *    LTX file and finalizing the journal, and torn pages of that last
 *    transaction. A mismatch after that is refused, with both checksums and
 *    the way out.
 */
export async function recoverDatabase(db: DB, layout: StoreLayout, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    pos: { txid: 0n, postApplyChecksum: 0n },
    pageSize: 0,
    pageN: 0,
    rolledBackPages: 0,
    reappliedTXID: null,
    removedTempFiles: [],
    quarantined: null,
  };
  await db.openFiles();
  report.removedTempFiles = await removeTempFiles(db.ltxDir);
  if (report.removedTempFiles.length > 0) log.info({ files: report.removedTempFiles }, 'removed unfinished LTX files');

  const files = await listLtxFiles(db.ltxDir);
  const newest = files[files.length - 1];
  const verified = newest === undefined ? null : await verifyNewest(db.name, newest);

  if (db.files.db !== null && !(await hasSQLiteHeader(db))) {
    if (verified !== null && verified.header.commit > 0) {
      throw new StoreError(
        'ERR_STORE_CORRUPT_DATABASE',
        `${db.name}: ${db.databasePath} is not a SQLite database, but the LTX history says it should be one at TXID ${formatTXID(verified.header.maxTXID)}. ` +
          `To recover: on a replica, delete ${layout.dbDir(db.name)} and restart (it re-snapshots from the primary); ` +
          `on the primary, restore the file from a replica (litefs export on the replica, then litefs import).`,
      );
    }
    report.quarantined = await quarantine(layout, db, 'database');
    log.warn({ movedTo: report.quarantined }, 'database file is not SQLite and has no LTX history; moved it aside');
    await db.openFiles();
  }

  if (db.files.journal !== null) {
    const result = await rollbackJournalFile(db.databasePath, layout.journalPath(db.name));
    await db.forgetJournal();
    report.rolledBackPages = result.pagesRestored;
    if (result.hot) log.info({ pages: result.pagesRestored, endReason: result.endReason }, 'rolled back hot journal');
  }
  if (verified !== null && db.files.db !== null) {
    // Free pages the interrupted transaction reused are not in SQLite's
    // journal; put their committed bytes back too.
    const undone = await db.restoreUndo({ txid: verified.header.maxTXID, postApplyChecksum: verified.trailer.postApplyChecksum });
    if (undone > 0) log.info({ pages: undone }, 'restored committed pages from the undo log');
  }
  await removeUndoLog(layout.undoPath(db.name));

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
  });
  report.pos = pos;
  if (verified === null || newest === undefined) return report;

  if (verified.header.commit === 0) {
    // Deleted database: a crash may have left the files behind the LTX.
    if (db.files.db !== null) await db.applyLtx(newest.path, { expectPrevious: false, kind: 'apply' });
    report.pageN = 0;
    return report;
  }
  if (geometry.pageCount === verified.header.commit && (await matches(db, verified))) return report;

  try {
    await db.applyLtx(newest.path, { expectPrevious: false, kind: 'apply' });
  } catch (err) {
    if (isStoreError(err, 'ERR_STORE_CHECKSUM_MISMATCH')) {
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
  report.reappliedTXID = verified.header.maxTXID;
  report.pageN = verified.header.commit;
  log.info({ txid: formatTXID(verified.header.maxTXID) }, 're-applied the newest LTX file');
  return report;
}

async function verifyNewest(name: string, file: LtxFileInfo): Promise<VerifyResult> {
  let v: VerifyResult;
  try {
    v = await verifyLtxFile(file.path);
  } catch (err) {
    throw new StoreError(
      'ERR_STORE_CORRUPT_LTX',
      `${name}: the newest LTX file ${file.path} is invalid (${describeError(err)}); refusing to start on a history that cannot be checked. ` +
        `Move the file aside to fall back to the previous one.`,
      { cause: err },
    );
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
  const file = db.files.db;
  if (file === null) return true;
  const size = await file.size();
  if (size === 0) return true;
  const head = await file.read(100, 0);
  if (head.length < 100 || !hasDatabaseMagic(head)) return false;
  try {
    parseDatabaseHeader(head);
    return true;
  } catch {
    return false;
  }
}

async function readGeometry(db: DB): Promise<{ pageSize: number; pageCount: number }> {
  const file = db.files.db;
  if (file === null) return { pageSize: 0, pageCount: 0 };
  const head = await file.read(100, 0);
  if (head.length < 100) return { pageSize: 0, pageCount: 0 };
  const h = parseDatabaseHeader(head);
  // Files last written by SQLite < 3.7.0 may carry a stale in-header count.
  const pageCount = h.pageCountValid ? h.pageCount : Math.floor((await file.size()) / h.pageSize);
  return { pageSize: h.pageSize, pageCount };
}

async function matches(db: DB, v: VerifyResult): Promise<boolean> {
  try {
    return (await db.currentChecksum(v.header.commit)) === v.trailer.postApplyChecksum;
  } catch {
    return false;
  }
}

/** Moves a database's file aside under <data>/quarantine instead of deleting it. */
async function quarantine(layout: StoreLayout, db: DB, what: 'database'): Promise<string> {
  await db.close();
  const dir = join(layout.quarantineDir, `${db.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(dir, { recursive: true });
  const to = join(dir, what);
  await rename(db.databasePath, to);
  return to;
}
