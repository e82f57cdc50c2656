import http2 from 'node:http2';
import { CodedError, describeError, type Logger } from '../internal/index.js';
import { formatTXID, isSnapshot } from '../ltx/index.js';
import { receiveLtx, type ReceivedLtx, type Store } from '../store/index.js';
import type { PrimaryInfo } from '../lease/index.js';
import { FrameReader, encodePosMap } from './protocol/index.js';
import { explainConnectError, NodeSecurity } from './auth/index.js';

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
  /** A HEARTBEAT arrived, with the primary's clock: drives `.lag`. */
  onContact: (primaryTimeMs: number) => void;
  /** An LTX file was applied; its header timestamp (the primary's clock at commit): drives `.lag`. */
  onApplied: (primaryTimeMs: number) => void;
  /**
   * Bytes arrived or local work on them progressed (a large LTX file takes
   * a while): the primary is not silent, whatever the heartbeats say.
   */
  onActivity?: () => void;
  /** Longest wait for local SQLite readers before applying a transaction. */
  applyLockTimeoutMs?: number;
  /** Token and TLS settings for dialling the primary (default: none). */
  security?: NodeSecurity;
}

export type ReplicaStreamErrorCode =
  /** The primary answered 401: wrong or missing token, or a refused client certificate. */
  | 'ERR_STREAM_UNAUTHORIZED'
  /** TLS or scheme mismatch between the nodes: an untrusted certificate, cleartext against TLS. */
  | 'ERR_STREAM_TLS'
  /** The connection failed for any other reason: unreachable, reset. */
  | 'ERR_STREAM_CONNECT';

export class ReplicaStreamError extends CodedError<ReplicaStreamErrorCode> {}

const STREAM_WINDOW = 4 << 20;
const SESSION_WINDOW = 8 << 20;

/**
 * A replica's side of `/stream`: connects to the primary over HTTP/2
 * cleartext, sends its positions, and hands every LTX file that comes back
 * to the store (which verifies it and applies it: store/replicate.ts)
 * until the stream ends. Transport only: what a replica accepts is the
 * store's business.
 */
export async function runReplicaStream(opts: ReplicaStreamOptions): Promise<StreamEnd> {
  const { store, primary, signal } = opts;
  const log = opts.logger.child({ component: 'replica', primary: primary.hostname });
  let session: http2.ClientHttp2Session | null = null;
  let onAbort: (() => void) | null = null;
  try {
    const security = opts.security ?? NodeSecurity.none();
    const tls = primary.advertiseURL.startsWith('https:') ? security.clientOptions() : {};
    // Windows large enough that a snapshot streams at disk speed instead of
    // one 64 KiB window per round trip through both event loops.
    session = http2.connect(primary.advertiseURL, { settings: { initialWindowSize: STREAM_WINDOW }, ...tls });
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
      ...security.headers(),
    });
    req.end(encodePosMap(positions));
    const status = await new Promise<number>((resolve, reject) => {
      req.once('response', (h) => resolve(Number(h[':status'])));
      req.once('error', (err) => {
        const tls = explainConnectError(err, primary.advertiseURL, () => '');
        reject(
          tls !== '' ? new ReplicaStreamError('ERR_STREAM_TLS', tls) : new ReplicaStreamError('ERR_STREAM_CONNECT', describeError(err)),
        );
      });
      req.once('close', () => reject(new Error('stream closed before a response')));
    });
    if (status === 401) {
      throw new ReplicaStreamError(
        'ERR_STREAM_UNAUTHORIZED',
        `the primary refused this replica (401): ${refusalReason(await readText(req))}`,
      );
    }
    if (status !== 200) {
      const text = (await readText(req)).trim();
      throw new Error(`primary answered ${status}: ${text.slice(0, 200)}`);
    }
    // Said by the lease monitor once caught up (and once per outage).
    log.debug('connected to primary');
    const reader = new FrameReader(req);
    try {
      for (;;) {
        const frame = await reader.next();
        opts.onActivity?.();
        if (frame === null) return { reason: 'end' };
        switch (frame.type) {
          case 'ltx': {
            const r = await receiveLtx(store, frame.name, frame.body, {
              logger: log,
              ...(opts.onActivity !== undefined ? { onActivity: opts.onActivity } : {}),
              ...(opts.applyLockTimeoutMs !== undefined ? { applyLockTimeoutMs: opts.applyLockTimeoutMs } : {}),
            });
            logApplied(log, r);
            opts.onApplied(Number(r.header.timestamp));
            break;
          }
          case 'ready':
            opts.onReady();
            break;
          case 'heartbeat':
            opts.onContact(Number(frame.timestamp));
            break;
          case 'end':
            return { reason: 'end' };
          case 'handoff':
            return { reason: 'handoff', leaseID: frame.leaseID };
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

/** The `error` of a 401's JSON body, or the body's first line. */
function refusalReason(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    /* not JSON */
  }
  return text.trim().split('\n')[0]!.slice(0, 200);
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

function logApplied(log: Logger, r: ReceivedLtx): void {
  const h = r.header;
  if (isSnapshot(h)) {
    log.info(
      { db: r.db, txid: formatTXID(h.maxTXID), pages: h.commit, bytes: r.size, receiveMs: r.receiveMs, applyMs: r.applyMs },
      'applied snapshot',
    );
  } else {
    // ageMs: since the primary committed it (its LTX timestamp; the clocks may differ across hosts).
    log.debug(
      { db: r.db, txid: formatTXID(h.maxTXID), receiveMs: r.receiveMs, applyMs: r.applyMs, ageMs: Date.now() - Number(h.timestamp) },
      'applied',
    );
  }
}
