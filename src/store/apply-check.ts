import { CHECKSUM_FLAG, checksumPage, isSnapshot, lockPgno, LtxDecoder, type LtxSource, type VerifyResult } from '../ltx/index.js';
import type { DB } from './db.js';

/** A fully verified LTX file and, for incrementals, the checksum of every page it carries. */
export interface CheckedLtx extends VerifyResult {
  /** pgno → page checksum; null for snapshots (the decoder checks their post-apply checksum itself). */
  pageSums: Map<number, bigint> | null;
}

/**
 * Decodes and verifies an LTX file (or a stream of one) end to end
 * (strict), collecting the page checksums of an incremental on the way,
 * so the result of applying it can be predicted before the database is
 * touched.
 */
export async function verifyLtxWithPageSums(source: LtxSource): Promise<CheckedLtx> {
  const dec = new LtxDecoder(source, { strict: true });
  try {
    const header = await dec.decodeHeader();
    const pageSums = isSnapshot(header) ? null : new Map<number, bigint>();
    const pgnos: number[] = [];
    for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) {
      pgnos.push(p.pgno);
      pageSums?.set(p.pgno, checksumPage(p.pgno, p.data));
    }
    const trailer = await dec.close();
    return { header, trailer, pageCount: pgnos.length, pgnos, size: dec.bytesRead, pageSums };
  } finally {
    await dec.destroy();
  }
}

/**
 * The database checksum `db` would have after applying an incremental
 * whose pages have checksums `pageSums` and whose commit is `commit`,
 * computed from the current position and the pages on disk that would be
 * replaced or cut off. The caller holds the write lock. Null when it
 * cannot be predicted (a page the file skips lies beyond the end of the
 * database file); the apply's own check then decides.
 *
 * The database checksum is the XOR of the page checksums with the flag bit
 * forced on, so swapping one page's contribution is two XORs.
 */
export async function predictPostApply(db: DB, pageSums: ReadonlyMap<number, bigint>, commit: number): Promise<bigint | null> {
  if (commit === 0) return CHECKSUM_FLAG;
  const ps = db.pageSize;
  const oldN = db.pageN;
  const lock = ps === 0 ? 0 : lockPgno(ps);
  let x = db.pos.postApplyChecksum;
  const oldSum = async (pgno: number): Promise<bigint | null> => {
    const data = await db.readDatabase(ps, (pgno - 1) * ps);
    return data.length === ps ? checksumPage(pgno, data) : null;
  };
  for (const [pgno, sum] of pageSums) {
    if (pgno <= oldN) {
      const old = await oldSum(pgno);
      if (old === null) return null;
      x ^= old;
    }
    x ^= sum;
  }
  for (let p = commit + 1; p <= oldN; p++) {
    if (p === lock || pageSums.has(p)) continue;
    const old = await oldSum(p);
    if (old === null) return null;
    x ^= old;
  }
  // Pages between the old end and the new commit that the file does not carry.
  for (let p = oldN + 1; p <= commit; p++) {
    if (p !== lock && !pageSums.has(p)) return null;
  }
  return x | CHECKSUM_FLAG;
}
