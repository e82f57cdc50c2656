import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DatabaseChecksum,
  HEADER_FLAG_COMPRESS_LZ4,
  formatChecksum,
  formatTXID,
  lockPgno,
  newHeader,
  writeLtxFile,
  type Header,
  type Page,
  type Trailer,
} from '../ltx/index.js';
import type { DB } from './db.js';
import { StoreError } from './errors.js';

export interface SnapshotOptions {
  compress: boolean;
  nodeID: bigint;
  /** Longest wait for SQLite writers to get out of the way. */
  lockTimeoutMs?: number;
}

export interface Snapshot {
  path: string;
  header: Header;
  trailer: Trailer;
}

/**
 * Writes the database as it stands at its current position into a
 * snapshot-shaped LTX file (TXIDs 1..pos) in its LTX directory, under a
 * temporary name the caller deletes after use.
 *
 * It holds the database's read lock only while copying pages to local disk
 * (SQLite writers wait, readers don't), never while the snapshot crosses
 * the network: a slow replica link must not stall the primary's writers.
 * The copy is checked against the position's checksum, so a snapshot never
 * carries pages that do not match the history it claims.
 */
export async function writeSnapshot(db: DB, opts: SnapshotOptions): Promise<Snapshot> {
  const guard = await db.locks.acquireReadLock(opts.lockTimeoutMs === undefined ? {} : { timeoutMs: opts.lockTimeoutMs });
  try {
    const pos = db.pos;
    if (pos.txid === 0n) {
      throw new StoreError('ERR_STORE_DB_NOT_FOUND', `${db.name}: no transaction yet, nothing to snapshot`);
    }
    const pageSize = db.pageSize;
    const commit = db.pageN;
    const header = newHeader({
      flags: opts.compress ? HEADER_FLAG_COMPRESS_LZ4 : 0,
      pageSize,
      commit,
      minTXID: 1n,
      maxTXID: pos.txid,
      timestamp: BigInt(Date.now()),
      nodeID: opts.nodeID,
    });
    const lock = lockPgno(pageSize);
    const pgnos: number[] = [];
    for (let p = 1; p <= commit; p++) if (p !== lock) pgnos.push(p);
    const sum = new DatabaseChecksum(pageSize);
    async function* checked(pages: AsyncIterable<Page>): AsyncGenerator<Page> {
      for await (const p of pages) {
        sum.addPage(p.pgno, p.data);
        yield p;
      }
    }
    const path = join(db.ltxDir, `.snapshot-${randomBytes(6).toString('hex')}.tmp`);
    const trailer = await writeLtxFile(path, header, checked(db.readPages(pgnos)), pos.postApplyChecksum);
    if (sum.value !== pos.postApplyChecksum) {
      await rm(path, { force: true });
      throw new StoreError(
        'ERR_STORE_CHECKSUM_MISMATCH',
        `${db.name}: snapshot at TXID ${formatTXID(pos.txid)} has checksum ${formatChecksum(sum.value)}, expected ${formatChecksum(pos.postApplyChecksum)}`,
      );
    }
    return { path, header, trailer };
  } finally {
    guard.release();
  }
}
