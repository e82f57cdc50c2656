import { dirname } from 'node:path';
import type { Stats } from 'node:fs';
import { realFS, type OpenMode, type StoreFile, type StoreFS } from '../../src/store/index.js';

/*
 * A StoreFS that fails on purpose, the way LiteFS's mock/os.go lets its
 * tests fail: every operation that changes the disk (opening to create or
 * truncate, a write, a truncate, an fsync, a rename, an unlink, a
 * directory sync) counts as a step, and the step chosen with `failAt`
 * throws the errno chosen (ENOSPC, EIO...) instead of happening. Reads
 * can be made to fail or come back short. Everything else is the real
 * file system.
 */

export type FaultErrno = 'ENOSPC' | 'EIO' | 'EDQUOT';

export class FaultFS implements StoreFS {
  /** Steps counted so far. */
  steps = 0;
  /** What each step was (for messages). */
  readonly trail: string[] = [];
  private failStep = 0;
  private errno: FaultErrno = 'EIO';
  private failReadsFrom: number | null = null;
  private shortReads = false;
  /** The step that failed, if one did. */
  failed: string | null = null;

  /** Fails step `n` (1-based) from now on with `errno`; 0 disables. */
  failAt(n: number, errno: FaultErrno = 'EIO'): void {
    this.steps = 0;
    this.trail.length = 0;
    this.failed = null;
    this.failStep = n;
    this.errno = errno;
  }

  /** Makes every read fail with EIO (or, with `short`, come back one byte short) from now on. */
  failReads(opts: { short?: boolean } = {}): void {
    this.failReadsFrom = this.steps;
    this.shortReads = opts.short ?? false;
  }

  healthy(): void {
    this.failStep = 0;
    this.failReadsFrom = null;
  }

  /** Counts a step; throws when it is the one chosen to fail. */
  step(what: string): void {
    this.steps++;
    this.trail.push(what);
    if (this.steps === this.failStep) {
      this.failed = what;
      throw Object.assign(new Error(`${this.errno}: injected fault at step ${this.steps} (${what})`), { code: this.errno });
    }
  }

  readFault(what: string, length: number): 'fail' | 'short' | null {
    if (this.failReadsFrom === null || length === 0) return null;
    if (this.shortReads) return 'short';
    void what;
    return 'fail';
  }

  async open(path: string, mode: OpenMode): Promise<StoreFile | null> {
    if (mode === 'create' || mode === 'truncate') this.step(`open(${mode}) ${path}`);
    const f = await realFS.open(path, mode);
    return f === null ? null : new FaultFile(f, this);
  }

  async rename(from: string, to: string): Promise<void> {
    this.step(`rename ${from} -> ${to}`);
    await realFS.rename(from, to);
  }

  async unlink(path: string): Promise<boolean> {
    this.step(`unlink ${path}`);
    return realFS.unlink(path);
  }

  async removeTree(path: string): Promise<void> {
    this.step(`removeTree ${path}`);
    await realFS.removeTree(path);
  }

  async mkdirs(path: string): Promise<void> {
    this.step(`mkdirs ${path}`);
    await realFS.mkdirs(path);
  }

  list(path: string): Promise<string[]> {
    return realFS.list(path);
  }

  stat(path: string): Promise<{ size: number; mtimeMs: number; isDirectory: boolean } | null> {
    return realFS.stat(path);
  }

  async syncDir(path: string): Promise<void> {
    this.step(`syncDir ${path}`);
    await realFS.syncDir(path);
  }

  /** The same steps the real durable write takes, each counted. */
  async writeFileDurably(path: string, data: Uint8Array): Promise<void> {
    const tmp = `${path}.tmp`;
    const f = await this.open(tmp, 'truncate');
    try {
      try {
        await f!.write(data, 0);
        await f!.sync(true);
      } finally {
        await f!.close();
      }
      await this.rename(tmp, path);
    } catch (err) {
      await realFS.unlink(tmp).catch(() => false);
      throw err;
    }
    await this.syncDir(dirname(path));
  }
}

class FaultFile implements StoreFile {
  constructor(
    private readonly inner: StoreFile,
    private readonly fs: FaultFS,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  async read(length: number, position: number, into?: Buffer): Promise<Buffer> {
    const fault = this.fs.readFault(this.path, length);
    if (fault === 'fail') throw Object.assign(new Error(`EIO: injected read fault (${this.path})`), { code: 'EIO' });
    const got = await this.inner.read(length, position, into);
    return fault === 'short' && got.length > 0 ? got.subarray(0, got.length - 1) : got;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    this.fs.step(`write ${data.length}@${position} ${this.path}`);
    await this.inner.write(data, position);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  stat(): Promise<Stats> {
    return this.inner.stat();
  }

  async truncate(size: number): Promise<void> {
    this.fs.step(`truncate ${size} ${this.path}`);
    await this.inner.truncate(size);
  }

  async sync(dataOnly?: boolean): Promise<void> {
    this.fs.step(`sync ${this.path}`);
    await this.inner.sync(dataOnly);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
