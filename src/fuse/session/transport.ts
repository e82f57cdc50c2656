import fs from 'node:fs';
import { ThreadReaders, type ReaderStop, type ThreadReaderOptions } from './reader-threads.js';

/** Receives what a transport reads, on the thread that started it. */
export interface TransportSink {
  /** One whole kernel message, in a buffer of its own: the receiver may keep it. */
  message(msg: Buffer): void;
  /**
   * No message will follow; called once. `err.code`: ENODEV (the
   * connection ended), ECONNABORTED (it was aborted), ECLOSED (the transport
   * was closed first), another errno (reading failed), or
   * ERR_FUSE_READER_CRASHED / ERR_FUSE_READER_START_FAILED.
   */
  stopped(err: ReaderStop): void;
}

/**
 * The channel a session speaks over. The transport pushes each kernel
 * message to the session; one write delivers exactly one reply or
 * notification. /dev/fuse is the real one; tests substitute an in-memory
 * fake that pushes messages directly.
 */
export interface FuseTransport {
  /** Starts delivering messages to `sink`; called once, after the device is mounted (it refuses reads before: EPERM). */
  start(sink: TransportSink): void;
  /** Writes one message made of `chunks`; throws the errno error on failure. */
  writeSync(chunks: readonly Buffer[]): void;
  /** Writes one message off the calling thread. */
  write(chunks: readonly Buffer[]): Promise<void>;
  /** Delivers no more messages and releases the channel once nothing uses it any more; called once. */
  close(): void;
}

/**
 * /dev/fuse as a transport, read by dedicated threads (ThreadReaders) that
 * hand each message to this thread. Writes to the device never block on a
 * client, so replies are written synchronously from the event loop, while
 * notifications, which can block in the kernel, go through the pool
 * (`write`).
 */
export class DevFuseTransport implements FuseTransport {
  private closing = false;
  private closed = false;
  /** Asynchronous writes still on the pool: the fd must outlive them (a reused fd number would get their bytes). */
  private pendingWrites = 0;
  private threads: ThreadReaders | undefined;
  private stopReported = false;
  /** The first orderly stop seen while other threads still read. */
  private orderlyStop: ReaderStop | undefined;

  constructor(
    readonly fd: number,
    private readonly opts: ThreadReaderOptions,
  ) {}

  /** True once the descriptor itself has been closed (not merely asked to close). */
  get isClosed(): boolean {
    return this.closed;
  }

  start(sink: TransportSink): void {
    if (this.threads) throw new Error('DevFuseTransport: already started');
    if (this.closing) throw Object.assign(new Error('/dev/fuse is closed'), { code: 'ENODEV' });
    this.threads = new ThreadReaders(this.fd, this.opts, {
      message: (m) => {
        // Read before the stop was reported or the transport closed, delivered after: nobody is left to answer it.
        if (!this.stopReported && !this.closing) sink.message(m);
      },
      stopped: (err) => {
        this.threadStopped(sink, err);
        this.closeIfIdle();
      },
    });
    this.threads.start();
  }

  /** @internal For tests that need to kill a reader thread the hard way. */
  readerThreadsForTesting(): ThreadReaders | undefined {
    return this.threads;
  }

  writeSync(chunks: readonly Buffer[]): void {
    // After close the fd number may belong to another file: never write to it.
    if (this.closing) throw Object.assign(new Error('/dev/fuse is closed'), { code: 'ENODEV' });
    if (chunks.length === 1) fs.writeSync(this.fd, chunks[0]!);
    else fs.writevSync(this.fd, chunks as Buffer[]);
  }

  write(chunks: readonly Buffer[]): Promise<void> {
    if (this.closing) return Promise.reject(Object.assign(new Error('/dev/fuse is closed'), { code: 'ENODEV' }));
    this.pendingWrites++;
    return new Promise((resolve, reject) => {
      fs.writev(this.fd, chunks as Buffer[], (err) => {
        this.pendingWrites--;
        this.closeIfIdle();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /**
   * Threads parked in read(2) cannot be interrupted: they are told to stop,
   * see it when their read returns, and the descriptor is closed only once
   * the last one has exited.
   */
  close(): void {
    this.closing = true;
    this.threads?.requestStop();
    this.closeIfIdle();
  }

  /**
   * The end of the connection reaches every thread; it is reported once the
   * last has stopped, so no request one of them read is still on its way.
   * Anything else is reported at once: a thread that failed took its read
   * loop with it, and limping on with fewer would hide that.
   */
  private threadStopped(sink: TransportSink, err: ReaderStop): void {
    if (this.stopReported) return;
    const orderly = err.code === 'ENODEV' || err.code === 'ECONNABORTED' || err.code === 'ECLOSED';
    if (orderly) {
      if (this.orderlyStop === undefined || this.orderlyStop.code === 'ECLOSED') this.orderlyStop = err;
      if ((this.threads?.live ?? 0) > 0) return;
    }
    this.stopReported = true;
    sink.stopped(orderly ? this.orderlyStop! : err);
  }

  private closeIfIdle(): void {
    if (!this.closing || this.closed || this.pendingWrites > 0 || (this.threads?.live ?? 0) > 0) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
