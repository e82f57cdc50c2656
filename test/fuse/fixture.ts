import { mount, type FuseMount, type MountOptions } from '../../src/fuse/index.js';
import { makeMountDir, removeMountDir } from '../helpers/mounts.js';
import { MemFs, type MemFsOptions } from './memfs.js';

export interface Mounted {
  dir: string;
  fs: MemFs;
  m: FuseMount;
}

/**
 * Mounts a fresh MemFs on a fresh directory, in this (test) process. Use
 * `unmountAll` in afterEach: it unmounts even after a failed assertion.
 */
export class MemfsMounts {
  private readonly live: { dir: string; m?: FuseMount }[] = [];

  async mount(opts: { memfs?: MemFsOptions; mount?: MountOptions; seed?: (fs: MemFs) => void } = {}): Promise<Mounted> {
    const dir = await makeMountDir('fuse-memfs-');
    const rec: { dir: string; m?: FuseMount } = { dir };
    this.live.push(rec);
    const fs = new MemFs(opts.memfs);
    opts.seed?.(fs);
    const m = await mount(dir, fs, { fsname: 'memfs', subtype: 'memfs', ...opts.mount });
    rec.m = m;
    fs.mount = m;
    return { dir, fs, m };
  }

  async unmountAll(): Promise<void> {
    for (const rec of this.live.splice(0)) await removeMountDir(rec.dir, rec.m);
  }
}
