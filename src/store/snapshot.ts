import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DatabaseChecksum,
  formatChecksum,
  formatTXID,
  HEADER_FLAG_COMPRESS_LZ4,
  lockPgno,
  LtxEncoder,
  newHeader,
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
    let trailer: Trailer;
    try {
      trailer = await spoolLtx(path, header, checked(db.readPages(pgnos)), pos.postApplyChecksum, opts.onProgress);
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
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

/**
 * Encodes an LTX file at `path` without fsync or rename: a snapshot is a
 * scratch file, deleted once sent, and rebuilt from the database if the
 * node crashes, so flushing 256 MB to disk would buy nothing.
 */
async function spoolLtx(
  path: string,
  header: Header,
  pages: AsyncIterable<Page>,
  postApplyChecksum: bigint,
  onProgress: ((path: string, bytes: number) => void) | undefined,
): Promise<Trailer> {
  const fh = await open(path, 'w', 0o600);
  try {
    let bytes = 0;
    const enc = new LtxEncoder(
      {
        write: async (chunk: Uint8Array) => {
          for (let off = 0; off < chunk.length;) {
            const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
            off += bytesWritten;
          }
          bytes += chunk.length;
          onProgress?.(path, bytes);
        },
      },
      { bufferSize: 1 << 20 },
    );
    await enc.encodeHeader(header);
    for await (const p of pages) await enc.encodePage(p.pgno, p.data);
    return await enc.close(postApplyChecksum);
  } finally {
    await fh.close();
  }
}
