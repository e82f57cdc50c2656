import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../internal/errors.js';
import type { Logger } from '../internal/log.js';
import { formatChecksum, formatPos, formatTXID, isSnapshot, ltxFilename, syncDir } from '../ltx/index.js';
import { predictPostApply, verifyLtxWithPageSums } from '../store/apply-check.js';
import { StoreError, isStoreError } from '../store/errors.js';
import { replaceHistory } from '../store/history.js';
import type { Store } from '../store/store.js';
import type { PrimaryInfo } from '../lease/index.js';
import { FrameReader, encodePosMap, type LTXFrame } from './protocol/index.js';

export type StreamEnd = { reason: 'end' } | { reason: 'handoff'; leaseID: string } | { reason: 'error'; error: unknown };

export interface ReplicaStreamOptions {
  store: Store;
  primary: PrimaryInfo;
  logger: Logger;
  signal: AbortSignal;
  /** Databases to replicate (lease.databases); empty = all. */
  databases?: readonly string[];
  /** The initial catch-up is done (READY). */
  onReady: () => void;
  /** The primary was heard from (a heartbeat or an LTX file): drives `.lag`. */
  onContact: (primaryTimeMs: number) => void;
  /**
   * Bytes arrived or local work on them progressed (a large LTX file takes
   * a while): the primary is not silent, whatever the heartbeats say.
   */
  onActivity?: () => void;
  /** Longest wait for local SQLite readers before applying a transaction. */
  applyLockTimeoutMs?: number;
}

const STREAM_WINDOW = 4 << 20;
const SESSION_WINDOW = 8 << 20;
const RECEIVE_WRITE_BYTES = 1 << 20;

/**
 * A replica's side of `/stream`: connects to the primary over HTTP/2
 * cleartext, sends its positions, and applies what comes back until the
 * stream ends. Every LTX file is written to disk and verified end to end
 * before it touches the database, so garbage, truncation or a bad checksum
 * on the wire costs a reconnect, never a database.
 */
export async function runReplicaStream(opts: ReplicaStreamOptions): Promise<StreamEnd> {
  const { store, primary, signal } = opts;
  const log = opts.logger.child({ component: 'replica', primary: primary.hostname });
  let session: http2.ClientHttp2Session | null = null;
  let onAbort: (() => void) | null = null;
  try {
    // Windows large enough that a snapshot streams at disk speed instead of
    // one 64 KiB window per round trip through both event loops.
    session = http2.connect(primary.advertiseURL, { settings: { initialWindowSize: STREAM_WINDOW } });
    session.on('error', () => {}); // surfaced through the request below
    const s = session;
    s.once('connect', () => s.setLocalWindowSize(SESSION_WINDOW));
    onAbort = (): void => {
      s.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const positions = new Map(
      store
        .databases()
        .filter((d) => d.pos.txid > 0n)
        .map((d) => [d.name, d.pos]),
    );
    const path =
      opts.databases !== undefined && opts.databases.length > 0
        ? `/stream?filter=${encodeURIComponent(opts.databases.join(','))}`
        : '/stream';
    const req = s.request({
      ':method': 'POST',
      ':path': path,
      'litefs-id': store.nodeIDString,
      'content-type': 'application/octet-stream',
    });
    req.end(encodePosMap(positions));
    const status = await new Promise<number>((resolve, reject) => {
      req.once('response', (h) => resolve(Number(h[':status'])));
      req.once('error', reject);
      req.once('close', () => reject(new Error('stream closed before a response')));
    });
    if (status !== 200) {
      const text = (await readText(req)).trim();
      throw new Error(`primary answered ${status}: ${text.slice(0, 200)}`);
    }
    log.info('connected to primary');
    const reader = new FrameReader(req);
    try {
      for (;;) {
        const frame = await reader.next();
        opts.onActivity?.();
        if (frame === null) return { reason: 'end' };
        switch (frame.type) {
          case 'ltx':
            await receiveLTX(frame, opts, log);
            opts.onContact(Date.now());
            break;
          case 'ready':
            opts.onReady();
            break;
          case 'heartbeat':
            opts.onContact(Number(frame.timestamp));
            break;
          case 'end':
            return { reason: 'end' };
          case 'handoff':
            return { reason: 'handoff', leaseID: frame.leaseId };
          case 'dropdb':
            log.info({ db: frame.name }, 'ignoring deprecated DROPDB frame');
            break;
          case 'hwm':
            break;
        }
      }
    } finally {
      await reader.close();
    }
  } catch (err) {
    // An abort names its cause (stopping, or the silent-primary watchdog).
    return { reason: 'error', error: signal.aborted ? (signal.reason instanceof Error ? signal.reason : new Error('stopped')) : err };
  } finally {
    // One listener per connection would pile up on the monitor's signal.
    if (onAbort !== null) signal.removeEventListener('abort', onAbort);
    session?.destroy();
  }
}

/**
 * Stores one LTX frame as a file (temp name, fsync, verify, rename), then
 * applies it under the database's write lock so local readers never see
 * half a transaction.
 */
async function receiveLTX(frame: LTXFrame, opts: ReplicaStreamOptions, log: Logger): Promise<void> {
  const store = opts.store;
  const db = await store.ensureDB(frame.name);
  const tmp = join(db.ltxDir, `.recv-${randomBytes(6).toString('hex')}.tmp`);
  const started = Date.now();
  const fh = await open(tmp, 'w', 0o644);
  let verified;
  try {
    // Pieces are HTTP/2 DATA frames (16 KiB): gather them into large
    // writes. The decoder verifies the file as it arrives, so a large one
    // is not read back from disk before it is applied.
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending.length = 0;
      pendingBytes = 0;
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    };
    async function* teed(): AsyncGenerator<Buffer> {
      for await (const piece of frame.body) {
        opts.onActivity?.();
        pending.push(piece);
        pendingBytes += piece.length;
        if (pendingBytes >= RECEIVE_WRITE_BYTES) await flush();
        yield piece;
      }
    }
    verified = await verifyLtxWithPageSums(teed());
    if (!frame.body.done) throw new Error(`LTX frame for ${frame.name} carries data past the file's trailer`);
    if (pendingBytes > 0) await flush();
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  opts.onActivity?.();
  const received = Date.now();
  const h = verified.header;
  const final = join(db.ltxDir, ltxFilename(h.minTXID, h.maxTXID));
  const guard = await db.locks.acquireWriteLock(opts.applyLockTimeoutMs === undefined ? {} : { timeoutMs: opts.applyLockTimeoutMs });
  let renamed = false;
  try {
    if (isSnapshot(h)) {
      await replaceHistory(db, store, h, verified.trailer.postApplyChecksum, log);
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
      const predicted = await predictPostApply(db, verified.pageSums!, h.commit);
      if (predicted !== null && predicted !== verified.trailer.postApplyChecksum) {
        // The file is intact but would not produce the state it claims:
        // refuse it before a page is written, and ask for a snapshot.
        db.resetPosition();
        throw new StoreError(
          'ERR_STORE_CHECKSUM_MISMATCH',
          `${db.name}: applying TXID ${formatTXID(h.maxTXID)} would give checksum ${formatChecksum(predicted)}, not its post-apply checksum ${formatChecksum(verified.trailer.postApplyChecksum)}; asking for a snapshot`,
        );
      }
    }
    await rename(tmp, final);
    renamed = true;
    await syncDir(db.ltxDir);
    try {
      await db.applyLtx(final);
    } catch (err) {
      if (isStoreError(err, 'ERR_STORE_CHECKSUM_MISMATCH')) {
        // Pages may already be written: the file now matches no position.
        // Forget ours so the next connection asks for a snapshot.
        db.resetPosition();
      }
      throw err;
    }
  } catch (err) {
    await rm(tmp, { force: true });
    // An unapplied file must not stay in the history.
    if (renamed) await rm(final, { force: true });
    throw err;
  } finally {
    guard.release();
  }
  if (isSnapshot(h)) {
    log.info(
      {
        db: frame.name,
        txid: formatTXID(h.maxTXID),
        pages: h.commit,
        bytes: verified.size,
        receiveMs: received - started,
        applyMs: Date.now() - received,
      },
      'applied snapshot',
    );
  } else {
    // ageMs: since the primary committed it (its LTX timestamp; the clocks may differ across hosts).
    log.debug(
      {
        db: frame.name,
        txid: formatTXID(h.maxTXID),
        snapshot: false,
        receiveMs: received - started,
        applyMs: Date.now() - received,
        ageMs: Date.now() - Number(h.timestamp),
      },
      'applied',
    );
  }
}

async function readText(req: http2.ClientHttp2Stream): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of req as AsyncIterable<Buffer>) {
      parts.push(c);
      n += c.length;
      if (n > 4096) break;
    }
  } catch (err) {
    return describeError(err);
  }
  return Buffer.concat(parts).toString('utf8');
}
