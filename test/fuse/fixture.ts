import { mount, type FuseMount, type MountOptions, type ReaderOption } from '../../src/fuse/index.js';
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
 * Mounts read the device with reader threads, as litefs does, unless their
 * own options say otherwise; a mount that did not get the mode asked for is
 * refused, so a test really runs in that mode.
 */
export class MemfsMounts {
  private readonly live: { dir: string; m?: FuseMount }[] = [];

  constructor(private readonly defaults: { reader?: ReaderOption } = { reader: 'worker' }) {}

  async mount(opts: { memfs?: MemFsOptions; mount?: MountOptions; seed?: (fs: MemFs) => void } = {}): Promise<Mounted> {
    const dir = await makeMountDir('fuse-memfs-');
    const rec: { dir: string; m?: FuseMount } = { dir };
    this.live.push(rec);
    const fs = new MemFs(opts.memfs);
    opts.seed?.(fs);
    const reader = opts.mount?.reader ?? this.defaults.reader;
    const m = await mount(dir, fs, { fsname: 'memfs', subtype: 'memfs', ...opts.mount, reader });
    rec.m = m;
    fs.mount = m;
    if (reader !== undefined && reader !== 'auto' && m.negotiated.reader.mode !== reader) {
      throw new Error(
        `fixture: asked for reader '${reader}', the session chose '${m.negotiated.reader.mode}' (${m.negotiated.reader.reason})`,
      );
    }
    return { dir, fs, m };
  }

  async unmountAll(): Promise<void> {
    for (const rec of this.live.splice(0)) await removeMountDir(rec.dir, rec.m);
  }
}
