import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import fsx from 'fs-native-extensions';
import { StoreError } from './errors.js';

/** `<data.dir>/lock`: held by the one process serving the data directory. */
export const LOCK_FILE = 'lock';

/**
 * One process per data directory. Two nodes on one directory would both
 * write LTX files and database pages under the same names, and each would
 * believe it alone decides the position: an exclusive open-file-description
 * lock on `<data.dir>/lock`, held for as long as the store is open, makes
 * the second one fail at startup instead. The kernel drops the lock when
 * the holder exits, however it exits (a SIGKILL leaves no stale lock to
 * clean up). The file holds the holder's PID, for the refusal message; it
 * is never removed, since unlinking a lock file races with the next
 * process opening it.
 */
export class DataDirLock {
  private constructor(
    readonly path: string,
    private fh: FileHandle | null,
  ) {}

  /** Creates the directory if needed and takes the lock, or throws ERR_STORE_DATA_DIR_LOCKED. */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    await mkdir(dataDir, { recursive: true });
    const path = join(dataDir, LOCK_FILE);
    // libuv opens with O_CLOEXEC: an application started by `exec` must not
    // inherit the descriptor, or the lock would outlive this process.
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      if (!fsx.tryLock(fh.fd, 0, 0)) {
        const holder = (await readText(fh)).trim();
        const who = /^\d+$/.test(holder) ? `process ${holder}` : 'another process (its PID is not recorded yet)';
        throw new StoreError(
          'ERR_STORE_DATA_DIR_LOCKED',
          `data directory ${dataDir} is in use by ${who}: only one litefs may serve a data directory (lock file ${path})`,
        );
      }
      await fh.truncate(0);
      await fh.write(`${process.pid}\n`, 0);
      return new DataDirLock(path, fh);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Releases the lock (closing the descriptor is what releases it). */
  async release(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

async function readText(fh: FileHandle): Promise<string> {
  const buf = Buffer.alloc(64);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  return buf.subarray(0, bytesRead).toString('utf8');
}
