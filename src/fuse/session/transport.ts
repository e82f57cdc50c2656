import fs from 'node:fs';
import { ThreadReaders, type ThreadReadSink, type ThreadReaderOptions } from './reader-threads.js';

type ReadCallback = (err: NodeJS.ErrnoException | null, bytesRead: number) => void;

/**
 * The byte channel a session speaks over: one read returns exactly one
 * kernel message, one write delivers exactly one reply or notification.
 * /dev/fuse is the real one; tests substitute an in-memory fake.
 */
export interface FuseTransport {
  /** Reads one message into `buf` (asynchronously: it may block for a long time). Used in 'pool' reader mode. */
  read(buf: Buffer, cb: ReadCallback): void;
  /**
   * 'worker' reader mode: reads on threads of the transport's own, off
   * libuv's pool, and hands every message to `sink` on the calling thread.
   * Optional: a transport without it can only be read in 'pool' mode.
   */
  readOnThreads?(opts: ThreadReaderOptions, sink: ThreadReadSink): void;
  /** Writes one message made of `chunks`; throws the errno error on failure. */
  writeSync(chunks: readonly Buffer[]): void;
  /** Writes one message off the calling thread. */
  write(chunks: readonly Buffer[]): Promise<void>;
  /**
   * Releases the channel; called once, after every pool read has returned.
   * Reader threads may still be parked in a read: they are told to stop, and
   * the channel is released only once they have exited.
   */
  close(): void;
}

/**
 * /dev/fuse as a transport. Reads are either `fs.read` on libuv's thread
 * pool (one blocked pool thread per outstanding read) or blocking reads on
 * dedicated threads (`readOnThreads`); writes to the device never block on
 * a client, so replies can be written synchronously from the event loop,
 * while notifications, which can block in the kernel, go through the pool
 * (`write`).
 */
export class DevFuseTransport implements FuseTransport {
  private closing = false;
  private closed = false;
  /** Asynchronous writes still on the pool: the fd must outlive them (a reused fd number would get their bytes). */
  private pendingWrites = 0;
  private threads: ThreadReaders | undefined;

  constructor(readonly fd: number) {}

  /** True once the descriptor itself has been closed (not merely asked to close). */
  get isClosed(): boolean {
    return this.closed;
  }

  read(buf: Buffer, cb: ReadCallback): void {
    fs.read(this.fd, buf, 0, buf.length, null, cb);
  }

  readOnThreads(opts: ThreadReaderOptions, sink: ThreadReadSink): void {
    if (this.threads) throw new Error('DevFuseTransport: reader threads already started');
    if (this.closing) throw Object.assign(new Error('/dev/fuse is closed'), { code: 'ENODEV' });
    this.threads = new ThreadReaders(this.fd, opts, {
      message: (m) => sink.message(m),
      stopped: (err) => {
        sink.stopped(err);
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

  close(): void {
    this.closing = true;
    this.threads?.requestStop();
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (!this.closing || this.closed || this.pendingWrites > 0 || (this.threads?.live ?? 0) > 0) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
