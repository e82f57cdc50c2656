import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from 'node:http2';
import { describeError, formatNodeID, isErrno, type Logger } from '../internal/index.js';
import { CHECKSUM_FLAG, encodeLtxToBuffer, formatPos, newHeader, verifyLtxFile, type Pos } from '../ltx/index.js';
import { writeSnapshot, type DB, type Store } from '../store/index.js';
import {
  ChunkEncoder,
  encodeControlFrame,
  encodeLtxFrameHeader,
  maxPosMapBytes,
  decodePosMap,
  type ControlFrame,
} from './protocol/index.js';
import { readBody, sendText, type ApiRequest, type ApiResponse } from './server.js';

export interface StreamServerOptions {
  store: Store;
  logger: Logger;
  compress: boolean;
  heartbeatIntervalMs?: number;
}

const ZERO: Pos = { txid: 0n, postApplyChecksum: 0n };
const FILE_READ = 1024 * 1024;

/** One replica connected to this primary's `/stream`. */
class Subscriber {
  readonly dirty = new Set<string>();
  readonly positions = new Map<string, Pos>();
  /** Databases this primary does not have that the replica was told to drop. */
  readonly deleted = new Map<string, boolean>();
  handoffLeaseID: string | null = null;
  handoffDone: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  keepThroughDemotion = false;
  closed = false;
  private waker: (() => void) | null = null;

  constructor(
    readonly nodeID: bigint,
    readonly filter: Set<string> | null,
  ) {}

  wants(db: string): boolean {
    return this.filter === null || this.filter.has(db);
  }

  wake(): void {
    const w = this.waker;
    this.waker = null;
    w?.();
  }

  /** Resolves on wake() or after `ms`; true when woken. */
  wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waker = null;
        resolve(false);
      }, ms);
      this.waker = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
  }
}

/**
 * The primary's side of `POST /stream` (LiteFS v0.5 wire format): for each
 * database, the LTX files that take the replica from its position to ours,
 * or a snapshot when it is new, too far behind (retention), or diverged
 * (ahead of us, or same TXID with another checksum, or a pre-apply checksum
 * that does not match); READY after the first pass; HEARTBEAT every second
 * while idle; HANDOFF when the lease moves to this replica; END on a clean
 * end. Commits wake the stream through store events, never by polling.
 */
export class StreamServer {
  private readonly opts: StreamServerOptions;
  private readonly log: Logger;
  private readonly subs = new Map<bigint, Subscriber>();

  constructor(opts: StreamServerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'stream' });
    opts.store.on('change', (c) => {
      for (const s of this.subs.values()) {
        if (s.wants(c.db)) {
          s.dirty.add(c.db);
          s.wake();
        }
      }
    });
    opts.store.on('role', ({ isPrimary }) => {
      if (isPrimary) return;
      for (const s of this.subs.values()) {
        if (!s.keepThroughDemotion) {
          s.closed = true;
          s.wake();
        }
      }
    });
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  hasSubscriber(nodeID: bigint): boolean {
    return this.subs.has(nodeID);
  }

  /**
   * Keeps every replica's stream open through this node's step-down, waits
   * for `settled` (the last commits are recorded), then until each replica
   * has been sent this node's position of every database it follows (or
   * `timeoutMs`), and ends the streams with END.
   */
  async drain(settled: Promise<void>, timeoutMs: number): Promise<void> {
    const subs = [...this.subs.values()];
    for (const s of subs) s.keepThroughDemotion = true;
    const deadline = Date.now() + timeoutMs;
    await Promise.race([settled, new Promise((r) => setTimeout(r, timeoutMs))]);
    const caughtUp = (s: Subscriber): boolean =>
      s.closed ||
      (s.dirty.size === 0 &&
        this.opts.store
          .databases()
          .every((db) => !s.wants(db.name) || db.pos.txid === 0n || s.positions.get(db.name)?.txid === db.pos.txid));
    while (Date.now() < deadline && !subs.every(caughtUp)) await new Promise((r) => setTimeout(r, 10));
    const behind = subs.filter((s) => !caughtUp(s)).length;
    if (behind > 0) this.log.warn({ replicas: behind, timeoutMs }, 'shutting down before every replica had the last transactions');
    for (const s of subs) {
      s.closed = true;
      s.wake();
    }
  }

  /** Keeps `nodeID`'s stream open while this node steps down for a handoff to it. */
  prepareHandoff(nodeID: bigint): boolean {
    const s = this.subs.get(nodeID);
    if (s === undefined) return false;
    s.keepThroughDemotion = true;
    return true;
  }

  /**
   * Sends HANDOFF with the lease ID once the replica has been sent every
   * change; resolves when the frame is written.
   */
  handoff(nodeID: bigint, leaseID: string): Promise<void> {
    const s = this.subs.get(nodeID);
    if (s === undefined) return Promise.reject(new Error(`node ${formatNodeID(nodeID)} is not connected`));
    return new Promise((resolve, reject) => {
      s.handoffLeaseID = leaseID;
      s.handoffDone = { resolve, reject };
      s.wake();
    });
  }

  handle = async (req: ApiRequest, res: ApiResponse, url: URL): Promise<void> => {
    const store = this.opts.store;
    const idHeader = req.headers['litefs-id'];
    const nodeID = typeof idHeader === 'string' && /^[0-9a-fA-F]{1,16}$/.test(idHeader) ? BigInt(`0x${idHeader}`) : null;
    if (nodeID === null) return sendText(res, 400, 'missing or invalid Litefs-Id header');
    if (nodeID === store.nodeID) return sendText(res, 400, 'cannot connect to self');
    if (!store.isPrimary) return sendText(res, 503, 'this node is not the primary');
    if (this.subs.has(nodeID)) return sendText(res, 409, `node ${formatNodeID(nodeID)} already has a stream`);

    let posMap: Map<string, Pos>;
    try {
      posMap = decodePosMap(await readBody(req, maxPosMapBytes()));
    } catch (err) {
      return sendText(res, 400, `invalid position map: ${describeError(err)}`);
    }
    const filterParam = url.searchParams.get('filter');
    const filter = filterParam === null || filterParam === '' ? null : new Set(filterParam.split(','));
    const sub = new Subscriber(nodeID, filter);
    for (const [name, pos] of posMap) sub.positions.set(name, pos);
    for (const name of posMap.keys()) if (sub.wants(name)) sub.dirty.add(name);
    for (const db of store.databases()) if (sub.wants(db.name)) sub.dirty.add(db.name);

    const stream = (res as Http2ServerResponse).stream as ServerHttp2Stream;
    this.subs.set(nodeID, sub);
    stream.once('close', () => {
      sub.closed = true;
      sub.wake();
    });
    // Headers go out now: the replica waits for them before reading frames.
    (res as Http2ServerResponse).writeHead(200, { 'Content-Type': 'application/octet-stream' });
    const log = this.log.child({ replica: formatNodeID(nodeID) });
    log.info({ databases: posMap.size }, 'replica connected');
    try {
      await this.serve(sub, stream, log);
    } catch (err) {
      if (!sub.closed) log.warn({ err }, `stream ended: ${describeError(err)}`);
      sub.handoffDone?.reject(err);
    } finally {
      this.subs.delete(nodeID);
      if (!stream.destroyed) stream.end();
      log.info('replica disconnected');
    }
    void (req as Http2ServerRequest);
  };

  private async serve(sub: Subscriber, stream: ServerHttp2Stream, log: Logger): Promise<void> {
    const write = async (buf: Buffer): Promise<void> => {
      if (sub.closed || stream.destroyed) throw new Error('stream closed');
      if (!stream.write(buf)) await drained(stream);
    };
    const control = (f: ControlFrame): Promise<void> => write(encodeControlFrame(f));
    const heartbeat = (): Promise<void> => control({ type: 'heartbeat', timestamp: BigInt(Date.now()) });
    const interval = this.opts.heartbeatIntervalMs ?? 1000;
    let first = true;
    while (!sub.closed) {
      const names = [...sub.dirty].sort();
      sub.dirty.clear();
      for (const name of names) {
        if (sub.closed) break;
        await this.streamDB(sub, name, write, log);
      }
      if (first) {
        first = false;
        await control({ type: 'ready' });
        await heartbeat();
      }
      if (sub.handoffLeaseID !== null && sub.dirty.size === 0) {
        await control({ type: 'handoff', leaseID: sub.handoffLeaseID });
        sub.handoffDone?.resolve();
        log.info('handed the lease off');
        return;
      }
      if (sub.dirty.size > 0) continue;
      const woken = await sub.wait(interval);
      if (!woken && !sub.closed && sub.dirty.size === 0) await heartbeat();
    }
    // The loop ends because `sub.closed` is set, which write() refuses:
    // END goes straight to the stream (LiteFS #183: replicas see a clean end).
    if (!stream.destroyed) stream.write(encodeControlFrame({ type: 'end' }));
  }

  /** Brings one database of the replica up to this node's position. */
  private async streamDB(sub: Subscriber, name: string, write: (b: Buffer) => Promise<void>, log: Logger): Promise<void> {
    const db = this.opts.store.db(name);
    if (db === undefined || db.pos.txid === 0n) {
      // No history here (never committed, or deleted long enough ago that
      // retention removed it): a replica that still has it drops it.
      const theirs = sub.positions.get(name) ?? ZERO;
      if (theirs.txid > 0n && !(sub.deleted.get(name) ?? false)) {
        log.info({ db: name, replicaPos: formatPos(theirs) }, 'the replica has a database this primary does not; telling it to drop it');
        sub.positions.set(name, await this.sendDeletion(name, theirs, theirs.txid + 1n, db?.pageSize ?? 4096, write));
        sub.deleted.set(name, true);
      }
      return;
    }
    for (let rounds = 0; rounds < 1_000_000 && !sub.closed; rounds++) {
      const ours = db.pos;
      let theirs = sub.positions.get(name) ?? ZERO;
      if (db.deleted) {
        // A deleted database: a replica that never had it skips it; one
        // that has it gets the deletion (its LTX file, or one made now when
        // retention removed that file or the replica diverged).
        if (theirs.txid === 0n || (theirs.txid === ours.txid && theirs.postApplyChecksum === ours.postApplyChecksum)) return;
        const next = theirs.txid < ours.txid ? await this.sendIncremental(db, theirs, write) : null;
        const to = theirs.txid < ours.txid ? ours.txid : theirs.txid + 1n;
        sub.positions.set(name, next ?? (await this.sendDeletion(name, theirs, to, db.pageSize, write)));
        continue;
      }
      if (theirs.txid > ours.txid || (theirs.txid === ours.txid && theirs.postApplyChecksum !== ours.postApplyChecksum)) {
        // `replica` is already the node ID in this logger's bindings.
        log.warn(
          { db: name, replicaPos: formatPos(theirs), primaryPos: formatPos(ours) },
          'replica diverged from this primary; sending a snapshot',
        );
        theirs = ZERO;
      }
      if (theirs.txid === ours.txid) return;
      const next = theirs.txid === 0n ? null : await this.sendIncremental(db, theirs, write);
      const pos = next ?? (await this.sendSnapshot(db, write, log));
      sub.positions.set(name, pos);
    }
  }

  /**
   * Sends an LTX file that takes the replica from `from` to a deleted
   * database at TXID `to` (commit 0, no pages: what a deletion is).
   */
  private async sendDeletion(name: string, from: Pos, to: bigint, pageSize: number, write: (b: Buffer) => Promise<void>): Promise<Pos> {
    const header = newHeader({
      flags: 0,
      pageSize,
      commit: 0,
      minTXID: from.txid + 1n,
      maxTXID: to,
      timestamp: BigInt(Date.now()),
      preApplyChecksum: from.postApplyChecksum,
      nodeID: this.opts.store.nodeID,
    });
    const file = encodeLtxToBuffer(header, [], CHECKSUM_FLAG);
    await write(encodeLtxFrameHeader(name, BigInt(file.length)));
    const enc = new ChunkEncoder({ batchBytes: FILE_READ });
    for (const out of enc.push(Buffer.from(file.buffer, file.byteOffset, file.length))) await write(out);
    await write(enc.end());
    return { txid: to, postApplyChecksum: CHECKSUM_FLAG };
  }

  /** Sends `<txid+1>-<txid+1>.ltx` if it exists and follows on; null → a snapshot is needed. */
  private async sendIncremental(db: DB, from: Pos, write: (b: Buffer) => Promise<void>): Promise<Pos | null> {
    const txid = from.txid + 1n;
    const path = this.opts.store.layout.ltxPath(db.name, txid, txid);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null; // removed by retention
      throw err;
    }
    try {
      const v = await verifyLtxFile(fh);
      if (v.header.preApplyChecksum !== from.postApplyChecksum) return null;
      await this.sendFile(db.name, fh, v.size, write);
      db.stats.ltxFramesSent++;
      return { txid: v.header.maxTXID, postApplyChecksum: v.trailer.postApplyChecksum };
    } finally {
      await fh.close();
    }
  }

  /**
   * Sends a snapshot while it is being written to a scratch file: the
   * database's read lock lasts only as long as the local copy (a slow
   * replica never stalls writers), and the network does not wait for the
   * whole copy either. The frame declares no size, as LiteFS does; if the
   * copy fails, the frame is cut before its terminator so the replica
   * discards it.
   */
  private async sendSnapshot(db: DB, write: (b: Buffer) => Promise<void>, log: Logger): Promise<Pos> {
    const started = Date.now();
    const spool = new SpoolProgress();
    const writing = writeSnapshot(db, {
      sys: this.opts.store.sys,
      compress: this.opts.compress,
      nodeID: this.opts.store.nodeID,
      onProgress: (path, bytes) => spool.advance(path, bytes),
    }).then(
      (snap) => {
        spool.finish(Date.now());
        return snap;
      },
      (err: unknown) => {
        spool.fail(err);
        throw err;
      },
    );
    // The failure is reported by the send loop; this keeps it from also
    // surfacing as an unhandled rejection when the loop stops first.
    writing.catch(() => {});
    let bytes = 0;
    let path: string | null = null;
    try {
      await spool.wait(() => spool.path !== null);
      path = spool.path!;
      const fh = await open(path, 'r');
      try {
        bytes = await this.sendBody(db.name, fh, 0n, spool, write);
      } finally {
        await fh.close();
      }
    } finally {
      // Let a writer still running (the send failed first) end before the
      // file goes; it removes the file itself when it fails.
      await writing.catch(() => null);
      if (path !== null) await rm(path, { force: true }).catch(() => {});
    }
    const snap = await writing;
    db.stats.snapshotFramesSent++;
    log.info(
      {
        db: db.name,
        txid: snap.header.maxTXID.toString(16),
        pages: snap.header.commit,
        bytes,
        ms: Date.now() - started,
        writeMs: (spool.finishedAt ?? Date.now()) - started,
      },
      'sent snapshot',
    );
    return { txid: snap.header.maxTXID, postApplyChecksum: snap.trailer.postApplyChecksum };
  }

  /** Sends a complete LTX file, declaring its size. */
  private async sendFile(name: string, fh: FileHandle, size: number, write: (b: Buffer) => Promise<void>): Promise<void> {
    const whole = new SpoolProgress();
    whole.bytes = size;
    whole.finish(Date.now());
    await this.sendBody(name, fh, BigInt(size), whole, write);
  }

  /**
   * Sends an LTX frame whose body is read from `fh` as far as `spool` says
   * it has been written, until the writer is done; returns the body size.
   */
  private async sendBody(
    name: string,
    fh: FileHandle,
    declared: bigint,
    spool: SpoolProgress,
    write: (b: Buffer) => Promise<void>,
  ): Promise<number> {
    await write(encodeLtxFrameHeader(name, declared));
    const enc = new ChunkEncoder({ batchBytes: FILE_READ });
    let off = 0;
    for (;;) {
      await spool.wait(() => spool.bytes > off || spool.done);
      if (off >= spool.bytes) break; // the writer is done and everything is sent
      // A fresh buffer per read: the encoder keeps it until it encodes the batch.
      const buf = Buffer.allocUnsafe(Math.min(FILE_READ, spool.bytes - off));
      const { bytesRead } = await fh.read(buf, 0, buf.length, off);
      if (bytesRead === 0) throw new Error(`${name}: LTX file shorter than the ${spool.bytes} bytes written`);
      off += bytesRead;
      for (const out of enc.push(buf.subarray(0, bytesRead))) await write(out);
    }
    await write(enc.end());
    return off;
  }
}

/** Resolves when the stream can take more data, or is gone. */
function drained(stream: ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** How far a snapshot's scratch file has been written; senders wait on it. */
class SpoolProgress {
  path: string | null = null;
  bytes = 0;
  done = false;
  finishedAt: number | null = null;
  error: unknown = null;
  private waiters: Array<() => void> = [];

  advance(path: string, bytes: number): void {
    this.path = path;
    this.bytes = bytes;
    this.wake();
  }

  finish(at: number): void {
    this.done = true;
    this.finishedAt = at;
    this.wake();
  }

  fail(err: unknown): void {
    this.done = true;
    this.error = err ?? new Error('snapshot failed');
    this.wake();
  }

  /** Resolves once `ready()` holds, or the writer has ended either way. */
  async wait(ready: () => boolean): Promise<void> {
    while (!ready() && !this.done) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.error !== null) throw this.error;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
