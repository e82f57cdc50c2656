import { FuseReaderError, type FuseTransport, type ReaderStop, type TransportSink } from '../../src/fuse/index.js';
import { parseReply, type Reply } from './wire.js';

function errnoError(code: string): NodeJS.ErrnoException & ReaderStop {
  return Object.assign(new Error(code), { code });
}

/**
 * An in-memory /dev/fuse: tests push kernel messages straight to the
 * session and collect the replies it writes, with no kernel and no reader
 * threads involved. Like the real transport it delivers each message in a
 * buffer of its own, asynchronously, and reports the end once.
 */
export class FakeTransport implements FuseTransport {
  readonly written: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private sink: TransportSink | undefined;
  private stopReported = false;
  /** close() was called. */
  closed = false;
  /** When set, the next writes fail with this errno code. */
  failWritesWith: string | undefined;

  start(sink: TransportSink): void {
    if (this.sink) throw new Error('fake: already started');
    this.sink = sink;
  }

  /**
   * Delivers one message, as an exact-size copy (Buffer.alloc never uses the
   * shared pool), so the caller may reuse `msg`. Delivered even after close:
   * a message the real transport read just before closing arrives late too.
   */
  push(msg: Buffer): void {
    const sink = this.started();
    const copy = Buffer.alloc(msg.length);
    msg.copy(copy);
    setImmediate(() => sink.message(copy));
  }

  /** Ends the connection (ENODEV, as after umount). */
  end(): void {
    this.stop(errnoError('ENODEV'));
  }

  /** Stops as a crashed reader thread would. */
  crash(): void {
    this.stop(new FuseReaderError('ERR_FUSE_READER_CRASHED', 'fuse: reader thread 0 crashed: simulated'));
  }

  writeSync(chunks: readonly Buffer[]): void {
    if (this.closed) throw errnoError('ENODEV');
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
    this.closed = true;
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

  private started(): TransportSink {
    if (!this.sink) throw new Error('fake: not started (call session.start() first)');
    return this.sink;
  }

  /** After the messages already pushed, as the real transport orders them. */
  private stop(err: ReaderStop): void {
    const sink = this.started();
    if (this.stopReported) return;
    this.stopReported = true;
    setImmediate(() => sink.stopped(err));
  }
}
