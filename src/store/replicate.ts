import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../internal/index.js';
import {
  checksumPage,
  formatChecksum,
  formatPos,
  formatTXID,
  isSnapshot,
  LtxDecoder,
  ltxFilename,
  syncDir,
  type Header,
  type Page,
  type Trailer,
} from '../ltx/index.js';
import { predictPostApply } from './apply-check.js';
import { StoreError, isStoreError } from './errors.js';
import { replaceHistory } from './history.js';
import type { Store } from './store.js';

export interface ReceiveOptions {
  logger: Logger;
  /** Bytes arrived or local work progressed: the primary is not silent. */
  onActivity?: () => void;
  /** Longest wait for local SQLite readers before applying. */
  applyLockTimeoutMs?: number;
}

export interface ReceivedLtx {
  db: string;
  header: Header;
  trailer: Trailer;
  /** Bytes of the LTX file as received (compressed if the primary compresses). */
  size: number;
  receiveMs: number;
  applyMs: number;
}

/** Pieces of the LTX body are gathered into writes of this size. */
const RECEIVE_WRITE_BYTES = 1 << 20;
/** Incrementals up to this many page bytes are applied from memory; larger ones are read back from the file. */
const MAX_PAGES_IN_MEMORY = 64 << 20;

/**
 * A replica's rules for one LTX file from the primary: stored under a temp
 * name while it is decoded and verified end to end (one pass: its pages
 * are kept for the apply), checked against this database's position and
 * the checksum applying it would produce, made durable, then applied under
 * the database's write lock so local readers never see half a transaction.
 * Garbage, truncation, a bad checksum or a file that does not follow on
 * costs a reconnect, never a database.
 */
export async function receiveLtx(store: Store, name: string, body: AsyncIterable<Uint8Array>, opts: ReceiveOptions): Promise<ReceivedLtx> {
  const db = await store.ensureDB(name);
  const tmp = join(db.ltxDir, `.recv-${randomBytes(6).toString('hex')}.tmp`);
  const started = Date.now();
  let decoded: Decoded;
  try {
    decoded = await storeAndDecode(tmp, body, opts.onActivity);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  opts.onActivity?.();
  const received = Date.now();
  const { header: h, trailer } = decoded;
  const final = join(db.ltxDir, ltxFilename(h.minTXID, h.maxTXID));
  const applyOpts = opts.applyLockTimeoutMs === undefined ? {} : { lockTimeoutMs: opts.applyLockTimeoutMs };
  let renamed = false;
  try {
    if (isSnapshot(h)) {
      await replaceHistory(db, store, h, trailer.postApplyChecksum, opts.logger);
    } else {
      // Checked before the file joins the LTX directory, whose newest file
      // defines the position at the next start.
      const pos = db.pos;
      if (h.minTXID !== pos.txid + 1n || h.preApplyChecksum !== pos.postApplyChecksum) {
        throw new StoreError(
          'ERR_STORE_POSITION_MISMATCH',
          `${db.name}: received LTX ${formatTXID(h.minTXID)}-${formatTXID(h.maxTXID)} (pre-apply ${formatChecksum(h.preApplyChecksum)}) does not follow position ${formatPos(pos)}`,
        );
      }
      const predicted = await predictPostApply(db, decoded.pageSums, h.commit);
      if (predicted !== null && predicted !== trailer.postApplyChecksum) {
        // The file is intact but would not produce the state it claims:
        // refuse it before a page is written, and ask for a snapshot.
        db.resetPosition();
        throw new StoreError(
          'ERR_STORE_CHECKSUM_MISMATCH',
          `${db.name}: applying TXID ${formatTXID(h.maxTXID)} would give checksum ${formatChecksum(predicted)}, not its post-apply checksum ${formatChecksum(trailer.postApplyChecksum)}; asking for a snapshot`,
        );
      }
    }
    await rename(tmp, final);
    renamed = true;
    await syncDir(db.ltxDir);
    try {
      if (decoded.pages !== null) await db.applyDecoded(h, trailer, decoded.pages, final, applyOpts);
      else await db.applyLtx(final, applyOpts);
    } catch (err) {
      // Pages may already be written: the file may match no position now.
      // Forget ours so the next connection asks for a snapshot.
      if (!isStoreError(err, 'ERR_STORE_POSITION_MISMATCH')) db.resetPosition();
      throw err;
    }
  } catch (err) {
    await rm(tmp, { force: true });
    // An unapplied file must not stay in the history.
    if (renamed) await rm(final, { force: true });
    throw err;
  }
  return { db: name, header: h, trailer, size: decoded.size, receiveMs: received - started, applyMs: Date.now() - received };
}

interface Decoded {
  header: Header;
  trailer: Trailer;
  size: number;
  /** pgno → page checksum of an incremental (empty for snapshots). */
  pageSums: Map<number, bigint>;
  /** An incremental's pages, or null when they are applied from the file (snapshots, very large files). */
  pages: Page[] | null;
}

/**
 * Writes the body to `tmp` while decoding it (strict), then fsyncs it.
 * Refuses bytes after the trailer: a well-formed frame ends with its file.
 */
async function storeAndDecode(tmp: string, body: AsyncIterable<Uint8Array>, onActivity?: () => void): Promise<Decoded> {
  const fh = await open(tmp, 'w', 0o644);
  try {
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending.length = 0;
      pendingBytes = 0;
      for (let off = 0; off < buf.length;) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    };
    const source = body[Symbol.asyncIterator]();
    let ended = false;
    const teed: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          const r = await source.next();
          if (r.done === true) {
            ended = true;
            return r;
          }
          onActivity?.();
          pending.push(r.value);
          pendingBytes += r.value.length;
          if (pendingBytes >= RECEIVE_WRITE_BYTES) await flush();
          return r;
        },
      }),
    };
    const dec = new LtxDecoder(teed, { strict: true });
    let decoded: Decoded;
    try {
      const header = await dec.decodeHeader();
      const snapshot = isSnapshot(header);
      const pageSums = new Map<number, bigint>();
      let pages: Page[] | null = snapshot ? null : [];
      for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) {
        if (snapshot) continue;
        pageSums.set(p.pgno, checksumPage(p.pgno, p.data));
        if (pages !== null) {
          pages.push({ pgno: p.pgno, data: Buffer.from(p.data) });
          if (pages.length * header.pageSize > MAX_PAGES_IN_MEMORY) pages = null;
        }
      }
      const trailer = await dec.close();
      decoded = { header, trailer, size: dec.bytesRead, pageSums, pages };
    } finally {
      await dec.destroy();
    }
    if (!ended && (await source.next()).done !== true) {
      throw new StoreError('ERR_STORE_CORRUPT_LTX', 'the LTX frame carries data past the file trailer');
    }
    if (pendingBytes > 0) await flush();
    await fh.sync();
    return decoded;
  } finally {
    await fh.close();
  }
}
