import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  DatabaseChecksum,
  HEADER_FLAG_COMPRESS_LZ4,
  formatChecksum,
  formatTXID,
  lockPgno,
  newHeader,
  type Header,
  type Page,
  type Trailer,
} from '../ltx/index.js';
import type { DB } from './db.js';
import { StoreError } from './errors.js';
import { encodeTo } from './ltx-io.js';
import type { StoreFS } from './sys.js';

export interface SnapshotOptions {
  sys: StoreFS;
  compress: boolean;
  nodeID: bigint;
  /**
   * Told the file's path and how many bytes are in it so far, after each
   * write: a sender can stream the snapshot while it is being written.
   */
  onProgress?: (path: string, bytes: number) => void;
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
 * It holds nothing while it copies: it reads through a snapshot view
 * (snapshot-view.ts), to which SQLite writers, checkpoints and applies
 * hand any page they are about to change, so neither a large database nor
 * a slow replica link ever stalls the primary's writers. The copy is
 * checked against the position's checksum, so a snapshot never carries
 * pages that do not match the history it claims.
 */
export async function writeSnapshot(db: DB, opts: SnapshotOptions): Promise<Snapshot> {
  const view = await db.openView();
  try {
    const pos = view.pos;
    if (pos.txid === 0n) {
      throw new StoreError('ERR_STORE_DB_NOT_FOUND', `${db.name}: no transaction yet, nothing to snapshot`);
    }
    const pageSize = view.pageSize;
    const commit = view.pageN;
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
    const sum = new DatabaseChecksum(pageSize);
    async function* pages(): AsyncGenerator<Page> {
      for (let p = 1; p <= commit; p++) {
        if (p === lock) continue;
        const data = await db.readViewPage(view, p);
        sum.addPage(p, data);
        yield { pgno: p, data };
      }
    }
    const path = join(db.ltxDir, `.snapshot-${randomBytes(6).toString('hex')}.tmp`);
    const sys = opts.sys;
    let trailer: Trailer;
    const f = await sys.open(path, 'truncate');
    if (f === null) throw new StoreError('ERR_STORE_DB_NOT_FOUND', `${db.name}: cannot create ${path}`);
    try {
      // No fsync: a snapshot is a scratch file, deleted once sent, and
      // rebuilt from the database if the node crashes.
      trailer = (await encodeTo(f, header, pages(), pos.postApplyChecksum, (bytes) => opts.onProgress?.(path, bytes))).trailer;
    } catch (err) {
      await f.close().catch(() => {});
      await sys.unlink(path).catch(() => false);
      throw err;
    }
    await f.close();
    if (sum.value !== pos.postApplyChecksum) {
      await sys.unlink(path);
      throw new StoreError(
        'ERR_STORE_CHECKSUM_MISMATCH',
        `${db.name}: snapshot at TXID ${formatTXID(pos.txid)} has checksum ${formatChecksum(sum.value)}, expected ${formatChecksum(pos.postApplyChecksum)}`,
      );
    }
    return { path, header, trailer };
  } finally {
    db.closeView(view);
  }
}
