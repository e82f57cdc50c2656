import { silentLogger, type Logger } from '../../internal/index.js';
import { Errno, FuseMountError, FuseProtocolError, FuseSessionError, errnoOf } from '../errors.js';
import type { FuseFilesystem } from '../filesystem.js';
import type { Capability } from '../protocol/capabilities.js';
import { type DecodedRequest, type InHeader, type InitIn, decodeRequest } from '../protocol/decode.js';
import { INIT_OUT_SIZE, encodeReply, encodeStatus, writeInitOut } from '../protocol/encode.js';
import { encodeDelete, encodeInvalEntry, encodeInvalInode, encodeStoreHeader } from '../protocol/notify.js';
import { Opcode, opcodeName } from '../protocol/opcodes.js';
import { Dispatcher, type ReplySink } from './dispatch.js';
import { OnceLog } from './errorlog.js';
import { Inflight } from './inflight.js';
import { LookupCounts } from './lookups.js';
import { answerInit } from './init.js';
import { MAX_WRITE_LIMIT, type Negotiated } from './negotiate.js';
import { type SessionStats, emptyStats } from './stats.js';
import type { FuseTransport } from './transport.js';
import { FuseReaderError } from './reader-error.js';
import type { ReaderStop } from './reader-threads.js';
import { logSafe, safeLogger } from './logsafe.js';

export interface SessionOptions {
  /** Largest WRITE the kernel may send, 4 KiB – 1 MiB. Default 1 MiB. */
  maxWrite?: number;
  maxReadahead?: number;
  maxBackground?: number;
  congestionThreshold?: number;
  /** Turn requested capabilities on or off (on top of the defaults; the fs init hook runs after). */
  capabilities?: Partial<Record<Capability, boolean>>;
  /** GETXATTR answer: ENOSYS (default; the kernel stops asking) or ENODATA (no such attribute). */
  getxattr?: 'ENOSYS' | 'ENODATA';
  logger?: Logger;
  /** Log every request and error reply at debug level. */
  debug?: boolean;
}

export type SessionEndReason = 'unmounted' | 'aborted' | 'error';

export interface SessionEnd {
  /** unmounted: the kernel ended the connection (umount); aborted: the connection was aborted; error: reading failed. */
  reason: SessionEndReason;
  error?: unknown;
}

export interface InvalEntryOptions {
  /** FUSE_EXPIRE_ONLY: mark the entry stale instead of dropping it (needs kernel `hasExpireOnly`; otherwise a full invalidation is sent). */
  expireOnly?: boolean;
}

/** Validates the numeric options; throws ERR_FUSE_BAD_OPTION naming the field. */
export function checkSessionOptions(opts: SessionOptions): { maxWrite: number } {
  const maxWrite = opts.maxWrite ?? MAX_WRITE_LIMIT;
  if (!Number.isInteger(maxWrite) || maxWrite < 4096 || maxWrite > MAX_WRITE_LIMIT) {
    throw new FuseMountError('ERR_FUSE_BAD_OPTION', `maxWrite must be an integer from 4096 to ${MAX_WRITE_LIMIT}, got ${String(maxWrite)}`);
  }
  return { maxWrite };
}

/**
 * One FUSE connection: takes each request the transport pushes, dispatches
 * it to the filesystem without waiting for earlier ones, and writes replies
 * and notifications from this thread. How messages are read is the
 * transport's business.
 */
export class FuseSession {
  readonly ended: Promise<SessionEnd>;
  private resolveEnded!: (e: SessionEnd) => void;
  private startPromise: Promise<Negotiated> | undefined;
  private resolveStart!: (n: Negotiated) => void;
  private rejectStart!: (e: unknown) => void;
  private startSettled = false;

  private readonly logger: Logger;
  private readonly debug: boolean;
  private readonly maxWrite: number;
  private readonly onceLog: OnceLog;
  private readonly counts: SessionStats = emptyStats();
  private readonly lookups = new LookupCounts();
  private readonly inflight: Inflight;
  private readonly dispatcher: Dispatcher;
  private readonly sink: ReplySink;

  private running = false;
  private finished = false;
  private negotiatedValue: Negotiated | undefined;
  private destroyed = false;

  constructor(
    private readonly fs: FuseFilesystem,
    private readonly transport: FuseTransport,
    private readonly opts: SessionOptions = {},
  ) {
    this.logger = opts.logger ? safeLogger(opts.logger) : silentLogger;
    this.debug = opts.debug ?? false;
    this.maxWrite = checkSessionOptions(opts).maxWrite;
    this.onceLog = new OnceLog(this.logger);
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.sink = { send: (unique, chunks, onRejected) => this.send(unique, chunks, onRejected) };
    this.inflight = new Inflight((interruptUnique) => this.sink.send(interruptUnique, [encodeStatus(interruptUnique, Errno.EAGAIN!)]));
    this.dispatcher = new Dispatcher(fs, this.sink, {
      lookups: this.lookups,
      inflight: this.inflight,
      onceLog: this.onceLog,
      logger: this.logger,
      debug: this.debug,
      getxattrErrno: opts.getxattr === 'ENODATA' ? Errno.ENODATA! : Errno.ENOSYS!,
      stats: this.counts,
      onDestroy: () => this.destroyOnce(),
      granted: (cap) => this.negotiatedValue?.capabilities.has(cap) ?? false,
    });
  }

  /**
   * Starts the transport and resolves once INIT has been answered (rejects
   * if INIT failed or the connection ended first). Call once the device is
   * mounted: /dev/fuse refuses reads (EPERM) before that.
   */
  start(): Promise<Negotiated> {
    if (this.startPromise) return this.startPromise;
    this.startPromise = new Promise<Negotiated>((resolve, reject) => {
      this.resolveStart = resolve;
      this.rejectStart = reject;
    });
    this.running = true;
    try {
      this.transport.start({ message: (m) => this.onMessage(m), stopped: (err) => this.onStopped(err) });
    } catch (err) {
      this.finish(
        'error',
        new FuseReaderError(
          'ERR_FUSE_READER_START_FAILED',
          `fuse: reading /dev/fuse could not start: ${String((err as Error)?.message ?? err)}`,
          {
            cause: err,
          },
        ),
      );
    }
    return this.startPromise;
  }

  /** INIT outcome; undefined before INIT. */
  get negotiated(): Negotiated | undefined {
    return this.negotiatedValue;
  }

  /** True from start() until the connection ends. */
  get isRunning(): boolean {
    return this.running;
  }

  /** How many references the kernel holds to `nodeid` (lookups minus forgets). */
  lookupCount(nodeid: bigint): bigint {
    return this.lookups.get(nodeid);
  }

  stats(): SessionStats {
    return {
      ...this.counts,
      unexpectedErrors: this.onceLog.total,
      inflight: this.inflight.size,
      knownNodes: this.lookups.size,
    };
  }

  /**
   * Drops cached data of `nodeid` in [offset, offset+length) and its cached
   * attributes. offset < 0: attributes only; length <= 0: to end of file.
   * Resolves false when the kernel had nothing cached for the node.
   *
   * Never await this inside a handler for a request on the same node (a
   * READ, WRITE, SETATTR... holding the page or inode lock): the kernel
   * waits for that request to finish before it can invalidate, so the
   * notification and the handler would wait for each other.
   */
  notifyInvalInode(nodeid: bigint, offset = 0n, length = 0n): Promise<boolean> {
    return this.notify(() => [encodeInvalInode(nodeid, offset, length)]);
  }

  /**
   * Drops the cached dentry `name` in `parent` (positive or negative).
   * Resolves false when the kernel had not cached it. Same deadlock rule as
   * notifyInvalInode, for requests on `parent` (LOOKUP, CREATE, UNLINK...).
   */
  notifyInvalEntry(parent: bigint, name: string, opts: InvalEntryOptions = {}): Promise<boolean> {
    const expireOnly = (opts.expireOnly ?? false) && (this.negotiatedValue?.kernelCapabilities.has('hasExpireOnly') ?? false);
    return this.notify(() => [encodeInvalEntry(parent, name, expireOnly)]);
  }

  /** Tells the kernel `name` in `parent` (pointing at `child`) was deleted; also detaches open directories. */
  notifyDelete(parent: bigint, child: bigint, name: string): Promise<boolean> {
    return this.notify(() => [encodeDelete(parent, child, name)]);
  }

  /** Pushes `data` into the kernel page cache of `nodeid` at `offset` (extending the cached size if needed). */
  notifyStore(nodeid: bigint, offset: bigint, data: Uint8Array): Promise<boolean> {
    return this.notify(() => [encodeStoreHeader(nodeid, offset, data.length), Buffer.from(data.buffer, data.byteOffset, data.length)]);
  }

  private async notify(build: () => Buffer[]): Promise<boolean> {
    if (!this.negotiatedValue) throw new FuseSessionError('ERR_FUSE_NOT_INITIALIZED', 'fuse: notification before INIT completed');
    if (!this.running) throw new FuseSessionError('ERR_FUSE_SESSION_CLOSED', 'fuse: notification on a session that has ended');
    this.counts.notifications++;
    try {
      // Always on the pool: an invalidation can block in the kernel until a
      // request in flight is answered, and that answer comes from this thread.
      await this.transport.write(build());
      return true;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ENOENT') {
        this.counts.notificationsNotCached++;
        return false;
      }
      if (code === 'ENODEV' || code === 'ECONNABORTED') {
        throw new FuseSessionError('ERR_FUSE_SESSION_CLOSED', 'fuse: the connection ended before the notification was delivered', {
          cause: err,
        });
      }
      throw new FuseSessionError('ERR_FUSE_NOTIFY_FAILED', `fuse: notification rejected by the kernel: ${String((err as Error).message)}`, {
        cause: err,
      });
    }
  }

  private onMessage(msg: Buffer): void {
    // The transport may have read it before the session finished: nobody is left to answer it.
    if (this.finished) return;
    this.counts.requests++;
    let req: DecodedRequest;
    try {
      req = decodeRequest(msg, msg.length);
    } catch (e) {
      this.malformed(e);
      return;
    }
    this.handle(req);
  }

  private onStopped(err: ReaderStop): void {
    const code = err.code;
    // ECLOSED only follows close(), which only a finished session calls.
    if (code === 'ENODEV' || code === 'ECLOSED') this.finish('unmounted');
    else if (code === 'ECONNABORTED') this.finish('aborted');
    else {
      this.logger.error({ err }, `fuse: reading /dev/fuse stopped (${code}); the session ends`);
      this.finish('error', err);
    }
  }

  private handle({ header, body }: DecodedRequest): void {
    if (this.debug)
      this.logger.debug(
        logSafe({ ...body, unique: header.unique, opcode: opcodeName(header.opcode), nodeid: header.nodeid, pid: header.pid }),
        'fuse request',
      );
    if (body.op === 'init') {
      // Only one INIT per connection (a second one would renegotiate under running handlers).
      if (this.negotiatedValue) this.dispatcher.error(header.unique, Errno.EPROTO!);
      else void this.onInit(header, body.init);
      return;
    }
    if (!this.negotiatedValue) {
      this.dispatcher.error(header.unique, Errno.EPROTO!);
      return;
    }
    this.dispatcher.dispatch(header, body);
  }

  private malformed(err: unknown): void {
    this.counts.malformed++;
    this.onceLog.report('malformed kernel message', err);
    if (!(err instanceof FuseProtocolError) || err.unique === undefined) return;
    const op = err.opcode;
    // These get no reply at all; answering would confuse the kernel.
    if (op === Opcode.FORGET || op === Opcode.BATCH_FORGET || op === Opcode.INTERRUPT || op === Opcode.NOTIFY_REPLY) return;
    this.dispatcher.error(err.unique, Errno.EIO!);
  }

  /**
   * Replies are written synchronously from this thread: the device never
   * blocks a reply write (the kernel only queues it for the waiting
   * client), and writing on the pool instead cost a pool round trip per
   * request, about half the round trips (native-notes/fuse.md §6).
   */
  private send(unique: bigint, chunks: Buffer[], onRejected?: () => void): void {
    try {
      this.transport.writeSync(chunks);
      this.counts.replies++;
    } catch (err) {
      this.writeFailed(unique, err);
      onRejected?.();
    }
  }

  private writeFailed(unique: bigint, err: unknown): void {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') {
      this.counts.staleReplies++;
      if (this.debug) this.logger.debug({ unique: String(unique) }, 'fuse reply dropped: request no longer pending (interrupted)');
      return;
    }
    if (code === 'ENODEV' || code === 'ECONNABORTED') return;
    this.onceLog.report('reply write failed', err, { unique: String(unique) });
  }

  private async onInit(h: InHeader, init: InitIn): Promise<void> {
    try {
      const answer = await answerInit(this.fs, init, {
        capabilities: this.opts.capabilities,
        logger: this.logger,
        limits: {
          maxWrite: this.maxWrite,
          maxReadahead: this.opts.maxReadahead,
          maxBackground: this.opts.maxBackground,
          congestionThreshold: this.opts.congestionThreshold,
        },
      });
      this.transport.writeSync([encodeReply(h.unique, INIT_OUT_SIZE, (b, o) => writeInitOut(b, o, answer.out))]);
      if (answer.kind === 'retry') return;
      const negotiated = answer.negotiated;
      this.negotiatedValue = negotiated;
      this.logger.info(
        {
          kernel: `${init.major}.${init.minor}`,
          protocol: `${negotiated.major}.${negotiated.minor}`,
          capabilities: [...negotiated.capabilities].join(','),
          maxWrite: negotiated.maxWrite,
        },
        'fuse: INIT negotiated',
      );
      this.settleStart(negotiated);
    } catch (err) {
      const errno = errnoOf(err) ?? Errno.EPROTO!;
      try {
        this.transport.writeSync([encodeStatus(h.unique, errno)]);
      } catch {
        // The connection is unusable either way; the error below says why.
      }
      this.settleStart(
        undefined,
        err instanceof FuseMountError
          ? err
          : new FuseMountError('ERR_FUSE_INIT_FAILED', `fuse: INIT failed: ${String((err as Error)?.message ?? err)}`, { cause: err }),
      );
    }
  }

  private settleStart(n: Negotiated | undefined, err?: unknown): void {
    if (this.startSettled) return;
    this.startSettled = true;
    if (n) this.resolveStart(n);
    else this.rejectStart(err);
  }

  private destroyOnce(): Promise<void> {
    if (this.destroyed || !this.fs.destroy) return Promise.resolve();
    this.destroyed = true;
    return Promise.resolve(this.fs.destroy());
  }

  /** The connection is over: every handler still running is aborted, destroy runs once, the transport is released. */
  private finish(reason: SessionEndReason, err?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.running = false;
    this.inflight.abortAll();
    const end: SessionEnd = { reason };
    if (err !== undefined) end.error = err;
    this.settleStart(
      undefined,
      new FuseSessionError('ERR_FUSE_SESSION_CLOSED', `fuse: connection ended (${end.reason}) before INIT`, { cause: end.error }),
    );
    this.destroyOnce()
      .catch((e: unknown) => this.onceLog.report('destroy handler threw', e))
      .finally(() => {
        try {
          this.transport.close();
        } catch (e) {
          this.logger.warn({ err: e }, 'fuse: closing /dev/fuse failed');
        }
        this.logger.info({ reason: end.reason }, 'fuse: session ended');
        this.resolveEnded(end);
      });
  }
}
