import { randomBytes } from 'node:crypto';
import { open, rm, statfs } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describeError } from '../internal/index.js';
import { formatPos, lockPgno, LtxDecoder, posToJSON, type Header, type Pos } from '../ltx/index.js';
import {
  importDatabase,
  ImportError,
  importSizeLimit,
  inspectImportHeader,
  invalidDatabaseName,
  isStoreError,
  LockError,
  SQLITE_HEADER_SIZE,
  writeSnapshot,
  type ImportErrorCode,
  type Store,
} from '../store/index.js';
import type { ApiContext } from './api.js';
import { sendJSON, sendText, type ApiRequest, type ApiResponse, type Route } from './server.js';

/** Response header of GET /export: the position the bytes are at, `%016x/%016x`. */
export const POS_HEADER = 'Litefs-Pos';

export interface TransferContext {
  store: Store;
  /** Where the primary is, for the 503 a replica answers to an import ("" when unknown). */
  primaryHint?: () => string;
  /** Longest wait for SQLite clients (write lock for imports, read lock for exports); default 30 s. */
  lockTimeoutMs?: number;
  /** Largest accepted upload for the free bytes on the data volume (default importSizeLimit). */
  sizeLimit?: (freeBytes: number) => number;
  /** http.max-import-size, named in the 413 when it is what an upload exceeds. */
  configuredLimit?: number;
}

/** POST /import and GET /export. */
export function transferRoutes(ctx: ApiContext): Route[] {
  const cap = ctx.maxImportSize ?? null;
  return transferRoutesFor({
    store: ctx.store,
    primaryHint: () => {
      const p = ctx.monitor.primary;
      return p === null ? '' : `${p.hostname} at ${p.advertiseURL}`;
    },
    ...(cap !== null ? { sizeLimit: (free: number) => Math.min(importSizeLimit(free), cap), configuredLimit: cap } : {}),
  });
}

const STATUS: Record<ImportErrorCode, number> = {
  ERR_IMPORT_NOT_SQLITE: 400,
  ERR_IMPORT_INVALID: 400,
  ERR_IMPORT_TOO_LARGE: 413,
  ERR_IMPORT_NOT_PRIMARY: 503,
  ERR_IMPORT_PAGE_SIZE: 409,
  ERR_IMPORT_BUSY: 503,
  ERR_IMPORT_APPLY: 500,
};

/** Bytes gathered before a spool write. */
const SPOOL_CHUNK = 1 << 20;
/** Bytes per response write while exporting. */
const EXPORT_CHUNK = 1 << 20;

export function transferRoutesFor(t: TransferContext): Route[] {
  const log = t.store.log.child({ component: 'transfer' });
  const lockTimeoutMs = t.lockTimeoutMs ?? 30_000;
  const sizeLimit = t.sizeLimit ?? importSizeLimit;

  const notPrimary = (): string => {
    const hint = t.primaryHint?.() ?? '';
    return `this node is not the primary; import on the primary${hint === '' ? ' (none is known right now)' : ` (${hint})`}`;
  };

  const handleImport = async (req: ApiRequest, res: ApiResponse, url: URL): Promise<void> => {
    const name = databaseName(url);
    if (typeof name !== 'string') return sendText(res, 400, name.error);
    if (!t.store.isPrimary) return sendText(res, 503, notPrimary());
    const declared = contentLength(req);
    const db = await t.store.ensureDB(name);
    const fs = await statfs(db.ltxDir);
    const limit = sizeLimit(fs.bavail * fs.bsize);
    if (declared !== null && declared > limit) {
      if (db.pos.txid === 0n) await t.store.discardIfNeverCommitted(name);
      return sendText(res, 413, tooLarge(declared, limit, t.configuredLimit));
    }
    const spool = join(db.ltxDir, `.import-${randomBytes(6).toString('hex')}.tmp`);
    let outcome: { pos: Pos } | ImportError;
    try {
      const size = await spoolBody(req, spool, limit, t.configuredLimit);
      const result = await importDatabase(db, spool, {
        nodeID: t.store.nodeID,
        sys: t.store.sys,
        isPrimary: () => t.store.isPrimary,
        lockTimeoutMs,
        logger: log,
      });
      log.info({ db: name, bytes: size, pos: formatPos(result.pos), convertedFromWAL: result.convertedFromWAL }, 'import complete');
      outcome = { pos: result.pos };
    } catch (err) {
      if (!(err instanceof ImportError)) throw err;
      outcome = err;
    } finally {
      // Gone before the client hears back, whatever the answer; a
      // database the failed import would have created leaves nothing.
      await rm(spool, { force: true });
      if (db.pos.txid === 0n) await t.store.discardIfNeverCommitted(name);
    }
    if (!(outcome instanceof ImportError)) return sendJSON(res, 200, posToJSON(outcome.pos));
    if (outcome.code === 'ERR_IMPORT_NOT_PRIMARY') return sendText(res, 503, notPrimary());
    log.warn({ db: name, code: outcome.code }, outcome.message);
    sendText(res, STATUS[outcome.code], outcome.message);
  };

  const handleExport = async (_req: ApiRequest, res: ApiResponse, url: URL): Promise<void> => {
    const name = databaseName(url);
    if (typeof name !== 'string') return sendText(res, 400, name.error);
    const db = t.store.db(name);
    if (db === undefined || !db.exists || db.pageN === 0 || db.pos.txid === 0n) return sendText(res, 404, `database "${name}" not found`);
    let snap;
    try {
      // A snapshot on local disk, read through a view that writers feed the
      // pages they change: neither the copy nor a slow client stalls them.
      snap = await writeSnapshot(db, { sys: t.store.sys, compress: false, nodeID: t.store.nodeID });
    } catch (err) {
      if (isStoreError(err, 'ERR_STORE_DB_NOT_FOUND')) return sendText(res, 404, `database "${name}" not found`);
      if (err instanceof LockError) return sendText(res, 503, `${name}: SQLite clients kept the database busy: ${err.message}`);
      throw err;
    }
    try {
      const { header, trailer } = snap;
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/octet-stream');
      res.setHeader('Content-Length', String(header.commit * header.pageSize));
      res.setHeader(POS_HEADER, formatPos({ txid: header.maxTXID, postApplyChecksum: trailer.postApplyChecksum }));
      await streamDatabase(snap.path, header, res);
      res.end();
    } catch (err) {
      log.warn({ db: name, err: describeError(err) }, 'export ended early');
      res.destroy();
    } finally {
      await rm(snap.path, { force: true });
    }
  };

  return [
    { method: 'POST', path: '/import', handler: handleImport },
    { method: 'GET', path: '/export', handler: handleExport },
  ];
}

function databaseName(url: URL): string | { error: string } {
  const name = url.searchParams.get('name');
  if (name === null || name === '') return { error: 'missing ?name= (the database name)' };
  const bad = invalidDatabaseName(name);
  if (bad !== null) return { error: `invalid database name ${JSON.stringify(name)}: ${bad}` };
  return name;
}

function contentLength(req: ApiRequest): number | null {
  const raw = req.headers['content-length'];
  if (typeof raw !== 'string' || !/^\d+$/.test(raw)) return null;
  return Number(raw);
}

function tooLarge(size: number, limit: number, configured?: number): string {
  if (configured !== undefined && limit === configured) return `an upload of ${size} bytes exceeds http.max-import-size (${limit} bytes)`;
  return `an upload of ${size} bytes exceeds the import limit of ${limit} bytes (a third of the data volume's free space, less a reserve: the upload, its LTX file and the database must all fit)`;
}

/**
 * Writes the request body to `path`, checking the SQLite header as soon as
 * its 100 bytes have arrived and the size as it grows. Once the upload is
 * known to be unacceptable the rest is read and discarded, so the client
 * (which is still sending) gets the answer rather than a reset connection.
 */
async function spoolBody(req: ApiRequest, path: string, limit: number, configured?: number): Promise<number> {
  const fh = await open(path, 'wx', 0o600);
  let failure: ImportError | null = null;
  let total = 0;
  let head = Buffer.alloc(0);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0;
  const flush = async (): Promise<void> => {
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    offset += data.length;
  };
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (failure !== null) continue;
      if (total > limit) {
        failure = new ImportError('ERR_IMPORT_TOO_LARGE', tooLarge(total, limit, configured));
        continue;
      }
      if (head.length < SQLITE_HEADER_SIZE) {
        head = Buffer.concat([head, chunk.subarray(0, SQLITE_HEADER_SIZE - head.length)]);
        if (head.length === SQLITE_HEADER_SIZE) {
          try {
            inspectImportHeader(head);
          } catch (err) {
            if (!(err instanceof ImportError)) throw err;
            failure = err;
            continue;
          }
        }
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= SPOOL_CHUNK) await flush();
    }
    if (failure === null && pendingBytes > 0) await flush();
  } finally {
    await fh.close();
  }
  if (failure !== null) throw failure;
  if (total === 0) throw new ImportError('ERR_IMPORT_NOT_SQLITE', 'empty upload: expected a SQLite database file');
  if (total < SQLITE_HEADER_SIZE) inspectImportHeader(head);
  return total;
}

/**
 * Streams a snapshot LTX file as a plain database file: its pages in order,
 * zeros for the lock page (never stored in LTX), with backpressure. The
 * file checksum is verified at the end; a mismatch aborts the response, so
 * the client sees a short body rather than wrong bytes it could accept.
 */
async function streamDatabase(path: string, header: Header, res: ApiResponse): Promise<void> {
  const ps = header.pageSize;
  const lock = lockPgno(ps);
  const buf = Buffer.allocUnsafe(Math.max(ps, Math.floor(EXPORT_CHUNK / ps) * ps));
  let fill = 0;
  let next = 1;
  const put = async (page: Uint8Array | null): Promise<void> => {
    if (page === null) buf.fill(0, fill, fill + ps);
    else buf.set(page, fill);
    fill += ps;
    next++;
    if (fill === buf.length) {
      // The response may keep a reference to what it is given: hand it a copy.
      await write(res, Buffer.from(buf));
      fill = 0;
    }
  };
  const dec = new LtxDecoder(path);
  try {
    await dec.decodeHeader();
    for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) {
      while (next < p.pgno && next === lock) await put(null);
      if (p.pgno !== next) throw new Error(`snapshot page ${p.pgno} out of sequence (expected ${next})`);
      await put(p.data);
    }
    await dec.close();
    while (next <= header.commit) await put(null);
    if (fill > 0) await write(res, Buffer.from(buf.subarray(0, fill)));
  } finally {
    await dec.destroy();
  }
}

/** One response write, waiting for drain; rejects if the client goes away. */
function write(response: ApiResponse, chunk: Buffer): Promise<void> {
  // Both response kinds have these members; their unions just do not overlap in TypeScript.
  const res = response as Pick<ServerResponse, 'write' | 'on' | 'off' | 'destroyed'>;
  if (res.destroyed) return Promise.reject(new Error('the client closed the connection'));
  if (res.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
    };
    const onDrain = (): void => {
      done();
      resolve();
    };
    const onClose = (): void => {
      done();
      reject(new Error('the client closed the connection'));
    };
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
