import fs from 'node:fs';

type ReadCallback = (err: NodeJS.ErrnoException | null, bytesRead: number) => void;

/**
 * The byte channel a session speaks over: one read returns exactly one
 * kernel message, one write delivers exactly one reply or notification.
 * /dev/fuse is the real one; tests substitute an in-memory fake.
 */
export interface FuseTransport {
  /** Reads one message into `buf` (asynchronously: it may block for a long time). */
  read(buf: Buffer, cb: ReadCallback): void;
  /** Writes one message made of `chunks`; throws the errno error on failure. */
  writeSync(chunks: readonly Buffer[]): void;
  /** Writes one message off the calling thread. */
  write(chunks: readonly Buffer[]): Promise<void>;
  /** Releases the channel; called once, after every read has returned. */
  close(): void;
}

/**
 * /dev/fuse as a transport. Reads are `fs.read` on libuv's thread pool (one
 * blocked pool thread per outstanding read); writes to the device never
 * block on a client, so replies can be written synchronously from the event
 * loop, while notifications, which can block in the kernel, go through the
 * pool (`write`).
 */
export class DevFuseTransport implements FuseTransport {
  private closing = false;
  private closed = false;
  /** Asynchronous writes still on the pool: the fd must outlive them (a reused fd number would get their bytes). */
  private pendingWrites = 0;

  constructor(readonly fd: number) {}

  read(buf: Buffer, cb: ReadCallback): void {
    fs.read(this.fd, buf, 0, buf.length, null, cb);
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
        if (this.closing && this.pendingWrites === 0) this.closeNow();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  close(): void {
    this.closing = true;
    if (this.pendingWrites === 0) this.closeNow();
  }

  private closeNow(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
