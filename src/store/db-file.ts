import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { isErrno } from '../internal/errors.js';

/**
 * One underlying file of a database (the SQLite file or its journal), kept
 * open for as long as the database is, so FUSE requests never pay for an
 * open(2). All I/O is positional; writes and reads loop over short results.
 */
export class DataFile {
  private constructor(
    readonly path: string,
    private fh: FileHandle,
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
    return (await this.fh.stat()).size;
  }

  async stat(): Promise<import('node:fs').Stats> {
    return this.fh.stat();
  }

  /** Reads up to `length` bytes at `position`; shorter only at end of file. */
  async read(length: number, position: number, into?: Buffer): Promise<Buffer> {
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === buf.length ? buf : buf.subarray(0, done);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  async truncate(size: number): Promise<void> {
    await this.fh.truncate(size);
  }

  async sync(dataOnly = false): Promise<void> {
    if (dataOnly) await this.fh.datasync();
    else await this.fh.sync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
