import {
  FuseReaderError,
  type FuseTransport,
  type ReaderStop,
  type ThreadReadSink,
  type ThreadReaderOptions,
} from '../../src/fuse/index.js';
import { parseReply, type Reply } from './wire.js';

type ReadCallback = (err: NodeJS.ErrnoException | null, n: number) => void;

function errnoError(code: string): NodeJS.ErrnoException & ReaderStop {
  return Object.assign(new Error(code), { code });
}

/**
 * An in-memory /dev/fuse: tests push kernel messages in and collect the
 * replies the session writes, with no kernel involved. Supports both reader
 * modes: pool-style `read` calls, and `readOnThreads`, whose simulated
 * threads behave like the real ones (each message in a fresh buffer; after
 * close() a thread stops only when the next message or the end arrives, and
 * the channel counts as closed only once every thread has stopped).
 */
export class FakeTransport implements FuseTransport {
  private readonly inbox: Buffer[] = [];
  private readonly readers: { buf: Buffer; cb: ReadCallback }[] = [];
  readonly written: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private threadSink: ThreadReadSink | undefined;
  private threadOpts: ThreadReaderOptions | undefined;
  /** Simulated reader threads not yet stopped. */
  liveThreads = 0;
  ended = false;
  /** close() was called. */
  closeRequested = false;
  /** The channel is released: close() was called and no thread is left reading. */
  closed = false;
  /** When set, the next writes fail with this errno code. */
  failWritesWith: string | undefined;

  push(msg: Buffer): void {
    this.inbox.push(msg);
    this.pump();
  }

  /** Ends the connection: pending and future reads fail with ENODEV. */
  end(): void {
    this.ended = true;
    this.pump();
  }

  get pendingReads(): number {
    return this.readers.length;
  }

  /** Options the session passed to readOnThreads (undefined in pool mode). */
  get threadOptions(): ThreadReaderOptions | undefined {
    return this.threadOpts;
  }

  read(buf: Buffer, cb: ReadCallback): void {
    this.readers.push({ buf, cb });
    this.pump();
  }

  readOnThreads(opts: ThreadReaderOptions, sink: ThreadReadSink): void {
    if (this.threadSink) throw new Error('fake: reader threads already started');
    this.threadOpts = opts;
    this.threadSink = sink;
    this.liveThreads = opts.threads;
    this.pump();
  }

  /** Kills one simulated reader thread without a stop report, as an uncaught exception in it would. */
  crashThread(): void {
    if (!this.threadSink || this.liveThreads === 0) throw new Error('fake: no reader thread to crash');
    this.stopThreads(1, new FuseReaderError('ERR_FUSE_READER_CRASHED', 'fuse: reader thread 0 crashed: simulated'));
  }

  writeSync(chunks: readonly Buffer[]): void {
    if (this.closeRequested) throw errnoError('ENODEV');
    if (this.failWritesWith) throw errnoError(this.failWritesWith);
    this.written.push(Buffer.concat(chunks));
    for (const w of this.waiters.splice(0)) w();
  }

  write(chunks: readonly Buffer[]): Promise<void> {
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        try {
          this.writeSync(chunks);
          resolve();
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  close(): void {
    this.closeRequested = true;
    if (this.liveThreads === 0) this.closed = true;
  }

  /** Replies written so far, decoded. */
  replies(): Reply[] {
    return this.written.map(parseReply);
  }

  /** Waits (bounded) until a reply for `unique` has been written. */
  async replyTo(unique: bigint, timeoutMs = 2000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies().find((x) => x.unique === unique);
      if (r) return r;
      if (Date.now() > deadline) throw new Error(`no reply to unique ${unique} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private stopThreads(count: number, err: ReaderStop): void {
    const sink = this.threadSink!;
    this.liveThreads -= count;
    for (let i = 0; i < count; i++) {
      setImmediate(() => {
        sink.stopped(err);
        if (this.closeRequested && this.liveThreads === 0) this.closed = true;
      });
    }
  }

  private pump(): void {
    if (this.threadSink) {
      const sink = this.threadSink;
      while (this.liveThreads > 0 && this.inbox.length > 0) {
        const msg = this.inbox.shift()!;
        // A thread that finds the closed flag after its read drops the message and stops.
        if (this.closeRequested) {
          this.stopThreads(1, errnoError('ECLOSED'));
          continue;
        }
        // Like the real threads: an exact-size buffer of its own (Buffer.alloc never uses the shared pool).
        const copy = Buffer.alloc(msg.length);
        msg.copy(copy);
        setImmediate(() => sink.message(copy));
      }
      if (this.ended && this.liveThreads > 0) this.stopThreads(this.liveThreads, errnoError(this.closeRequested ? 'ECLOSED' : 'ENODEV'));
      return;
    }
    while (this.readers.length > 0 && (this.inbox.length > 0 || this.ended)) {
      const r = this.readers.shift()!;
      const msg = this.inbox.shift();
      if (!msg) {
        setImmediate(() => r.cb(errnoError('ENODEV'), 0));
        continue;
      }
      msg.copy(r.buf);
      setImmediate(() => r.cb(null, msg.length));
    }
  }
}
