import fs, { constants, type Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { isErrno } from '../internal/index.js';
import { durableWriter } from './durable-writer.js';

/**
 * Every file-system operation the store performs, behind one small
 * interface: the real one below, and in tests one that fails a chosen
 * operation (a write, an fsync, a rename...) the way a full or failing
 * disk would, so each store operation can be shown to leave the database
 * and its LTX history consistent whatever step fails.
 */
export interface StoreFS {
  /**
   * Opens a file read-write ('rw'), creating it ('create'), or creating it
   * empty ('truncate'); read-only with 'r'. Null when it does not exist and
   * the mode does not create.
   */
  open(path: string, mode: OpenMode): Promise<StoreFile | null>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; false when it was not there. */
  unlink(path: string): Promise<boolean>;
  /** Removes a directory tree; nothing when it is not there. */
  removeTree(path: string): Promise<void>;
  /** Creates a directory and its parents. */
  mkdirs(path: string): Promise<void>;
  /** Names in a directory; empty when it does not exist. */
  list(path: string): Promise<string[]>;
  /** Size and mtime, or null when the path does not exist. */
  stat(path: string): Promise<{ size: number; mtimeMs: number; isDirectory: boolean } | null>;
  /** Makes a directory's entries (creates, renames, removals) durable. */
  syncDir(path: string): Promise<void>;
  /**
   * Writes a whole file durably under its final name: temp file, write,
   * fdatasync, rename, directory fsync. After it resolves a crash leaves
   * the whole file; before, no file (or the old one).
   */
  writeFileDurably(path: string, data: Uint8Array): Promise<void>;
}

export type OpenMode = 'r' | 'rw' | 'create' | 'truncate';

/**
 * One open file. Reads and writes are positional and loop over short
 * results; a read returns fewer bytes only at end of file.
 */
export interface StoreFile {
  readonly path: string;
  read(length: number, position: number, into?: Buffer): Promise<Buffer>;
  write(data: Uint8Array, position: number): Promise<void>;
  size(): Promise<number>;
  stat(): Promise<Stats>;
  truncate(size: number): Promise<void>;
  sync(dataOnly?: boolean): Promise<void>;
  close(): Promise<void>;
}

const OPEN_FLAGS: Record<OpenMode, number> = {
  r: constants.O_RDONLY,
  rw: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT,
  truncate: constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC,
};

/**
 * The real file system. Reads, writes, stats and truncates run
 * synchronously on the calling thread: they touch the page cache and take
 * microseconds, while a libuv pool round trip (plus the event-loop wakeup
 * that follows) costs tens of microseconds on a loaded machine, and a FUSE
 * request doing one of these would pay it every time. Only fsync, which
 * waits for the disk, goes to the pool.
 */
class RealFile implements StoreFile {
  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

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

  async size(): Promise<number> {
    return fs.fstatSync(this.fh.fd).size;
  }

  async stat(): Promise<Stats> {
    return fs.fstatSync(this.fh.fd);
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

export const realFS: StoreFS = {
  async open(path, mode) {
    try {
      return new RealFile(path, await open(path, OPEN_FLAGS[mode], 0o644));
    } catch (err) {
      if ((mode === 'r' || mode === 'rw') && isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  },
  rename: (from, to) => rename(from, to),
  async unlink(path) {
    try {
      fs.unlinkSync(path);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  },
  removeTree: (path) => rm(path, { recursive: true, force: true }),
  async mkdirs(path) {
    await mkdir(path, { recursive: true });
  },
  async list(path) {
    try {
      return await readdir(path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  },
  async stat(path) {
    try {
      const s = await stat(path);
      return { size: s.size, mtimeMs: s.mtimeMs, isDirectory: s.isDirectory() };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  },
  async syncDir(path) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  writeFileDurably: (path, data) => durableWriter.write(path, data),
};
