import type { FuseTransport } from '../../src/fuse/index.js';
import { parseReply, type Reply } from './wire.js';

type ReadCallback = (err: NodeJS.ErrnoException | null, n: number) => void;

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

/**
 * An in-memory /dev/fuse: tests push kernel messages in and collect the
 * replies the session writes, with no kernel involved.
 */
export class FakeTransport implements FuseTransport {
  private readonly inbox: Buffer[] = [];
  private readonly readers: { buf: Buffer; cb: ReadCallback }[] = [];
  readonly written: Buffer[] = [];
  private waiters: (() => void)[] = [];
  ended = false;
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

  read(buf: Buffer, cb: ReadCallback): void {
    this.readers.push({ buf, cb });
    this.pump();
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

  private pump(): void {
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
