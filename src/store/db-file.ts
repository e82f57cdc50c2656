import fs, { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isErrno } from '../internal/index.js';

/**
 * One underlying file of a database (the SQLite file, its journal, the undo
 * log), kept open for as long as the database is, so FUSE requests never
 * pay for an open(2). All I/O is positional; writes and reads loop over
 * short results.
 *
 * Reads, writes, stats and truncates run synchronously on the calling
 * thread: they touch the page cache and take microseconds, while a libuv
 * pool round trip (plus the event-loop wakeup that follows) costs tens of
 * microseconds on a loaded machine, and a FUSE request that does one of
 * these would pay it every time. Only fsync, which waits for the disk, goes
 * to the pool. The methods stay async so callers need not care.
 */
export class DataFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /** Opens read-write, creating the file when `create` is set. Null when it does not exist. */
  static async open(path: string, create: boolean): Promise<DataFile | null> {
    const flags = constants.O_RDWR | (create ? constants.O_CREAT : 0);
    try {
      return new DataFile(path, await open(path, flags, 0o644));
    } catch (err) {
      if (!create && isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  async size(): Promise<number> {
    return fs.fstatSync(this.fh.fd).size;
  }

  async stat(): Promise<Stats> {
    return fs.fstatSync(this.fh.fd);
  }

  /** Reads up to `length` bytes at `position`; shorter only at end of file. */
  async read(length: number, position: number, into?: Buffer): Promise<Buffer> {
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fh.fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done === buf.length ? buf : buf.subarray(0, done);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) done += fs.writeSync(this.fh.fd, data, done, data.length - done, position + done);
  }

  async truncate(size: number): Promise<void> {
    fs.ftruncateSync(this.fh.fd, size);
  }

  async sync(dataOnly = false): Promise<void> {
    if (dataOnly) await this.fh.datasync();
    else await this.fh.sync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
