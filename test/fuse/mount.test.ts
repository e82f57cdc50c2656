import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FuseMountError, fuseMountsAt, mount, type FuseMount } from '../../src/fuse/index.js';
import { cleanupMount, makeMountDir, removeMountDir } from '../helpers/mounts.js';
import { runProcess, spawnInteractive } from '../helpers/processes.js';
import { startDaemon } from './daemon-process.js';
import { MemfsMounts } from './fixture.js';
import { MemFs } from './memfs.js';

const mounts = new MemfsMounts();
const dirs: string[] = [];
afterEach(async () => {
  await mounts.unmountAll();
  for (const d of dirs.splice(0)) await removeMountDir(d);
});

async function expectMountError(p: Promise<unknown>, code: string): Promise<FuseMountError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FuseMountError);
    expect((err as FuseMountError).code).toBe(code);
    return err as FuseMountError;
  }
  throw new Error(`expected ${code}`);
}

describe('mount errors are typed and immediate', () => {
  it('a missing mountpoint or parent', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'fuse-err-'));
    try {
      const e1 = await expectMountError(mount(path.join(base, 'nope'), new MemFs()), 'ERR_FUSE_MOUNTPOINT_MISSING');
      expect(e1.message).toContain(path.join(base, 'nope'));
      await expectMountError(mount(path.join(base, 'a', 'b'), new MemFs()), 'ERR_FUSE_MOUNTPOINT_MISSING');
    } finally {
      await rm(base, { recursive: true });
    }
  });

  it('a mountpoint that is a regular file', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'fuse-err-'));
    try {
      await writeFile(path.join(base, 'file'), 'x');
      const e = await expectMountError(mount(path.join(base, 'file'), new MemFs()), 'ERR_FUSE_MOUNTPOINT_NOT_DIR');
      expect(e.message).toMatch(/not a directory/);
    } finally {
      await rm(base, { recursive: true });
    }
  });

  it('a missing FUSE device, and bad names', async () => {
    const dir = await makeMountDir();
    dirs.push(dir);
    await expectMountError(mount(dir, new MemFs(), { devicePath: '/nonexistent/fuse' }), 'ERR_FUSE_NO_DEVICE');
    await expectMountError(mount(dir, new MemFs(), { fsname: 'a,rw' }), 'ERR_FUSE_BAD_OPTION');
    await expectMountError(mount(dir, new MemFs(), { maxWrite: 4 << 20 }), 'ERR_FUSE_BAD_OPTION');
    const noThreads = await expectMountError(mount(dir, new MemFs(), { workerThreads: 0 }), 'ERR_FUSE_BAD_OPTION');
    expect(noThreads.message).toMatch(/workerThreads must be an integer from 1 to 8, got 0/);
    await expectMountError(mount(dir, new MemFs(), { workerThreads: 9 }), 'ERR_FUSE_BAD_OPTION');
    await expectMountError(mount(dir, new MemFs(), { workerThreads: 1.5 }), 'ERR_FUSE_BAD_OPTION');
    expect(await fuseMountsAt(dir)).toEqual([]); // nothing left mounted by the failures
  });

  it('mounting the same path twice in one process, while the first keeps working', async () => {
    const { dir } = await mounts.mount({ seed: (f) => f.writeFile('x', 'first\n') });
    const e = await expectMountError(mount(dir, new MemFs()), 'ERR_FUSE_ALREADY_MOUNTED');
    expect(e.message).toContain(dir);
    expect((await runProcess('cat', [`${dir}/x`])).stdout).toBe('first\n');
    expect(await fuseMountsAt(dir)).toHaveLength(1);
  });

  it('a non-root caller', async () => {
    const dir = await makeMountDir();
    dirs.push(dir);
    const daemon = startDaemon(dir, { uid: 65534, gid: 65534 });
    const line = await daemon.waitForLine(/^(mounted|error)/, 60_000);
    await daemon.exited;
    expect(line).toMatch(/^error ERR_FUSE_NOT_ROOT /);
  });
});

describe('stale mounts', () => {
  it('a SIGKILLed daemon leaves "Transport endpoint is not connected"; the next mount at the path recovers it', async () => {
    const dir = await makeMountDir();
    dirs.push(dir);
    const daemon = startDaemon(dir);
    let m: FuseMount | undefined;
    try {
      expect(await daemon.waitForLine(/^(mounted|error)/, 60_000)).toBe(`mounted ${dir}`);
      expect((await runProcess('cat', [`${dir}/hello.txt`])).stdout).toBe('hello from the daemon\n');

      daemon.kill('SIGKILL');
      expect((await daemon.exited).signal).toBe('SIGKILL');
      const stale = await runProcess('stat', [dir]);
      expect(stale.code).not.toBe(0);
      expect(stale.stderr).toMatch(/Transport endpoint is not connected/);
      expect(await fuseMountsAt(dir)).toHaveLength(1);

      const fs = new MemFs();
      fs.writeFile('hello.txt', 'hello from the new mount\n');
      m = await mount(dir, fs, { fsname: 'memfs', subtype: 'memfs' });
      expect((await runProcess('cat', [`${dir}/hello.txt`])).stdout).toBe('hello from the new mount\n');
      expect(await fuseMountsAt(dir)).toHaveLength(1);
    } finally {
      daemon.kill('SIGKILL');
      await daemon.exited;
      await cleanupMount(dir, m);
    }
  });

  it("existingMount: 'error' refuses to touch a foreign mount; the cleanup helper removes a stale one", async () => {
    const dir = await makeMountDir();
    dirs.push(dir);
    const daemon = startDaemon(dir);
    try {
      expect(await daemon.waitForLine(/^(mounted|error)/, 60_000)).toBe(`mounted ${dir}`);
      daemon.kill('SIGKILL');
      await daemon.exited;
      const e = await expectMountError(mount(dir, new MemFs(), { existingMount: 'error' }), 'ERR_FUSE_ALREADY_MOUNTED');
      expect(e.message).toMatch(/fuse\.memfs memfs-daemon/);
      const cleared = await cleanupMount(dir);
      expect(cleared.found).toBe(1);
      expect(await fuseMountsAt(dir)).toEqual([]);
      expect((await runProcess('stat', ['-c', '%F', dir])).stdout).toBe('directory\n');
    } finally {
      daemon.kill('SIGKILL');
      await daemon.exited;
    }
  });
});

describe('a hung connection', () => {
  it('the cleanup helper aborts a hung connection (daemon alive but not answering)', async () => {
    const { dir, fs, m } = await mounts.mount({ seed: (f) => f.writeFile('hang', 'x', { cache: 'direct' }) });
    // Every read hangs forever and ignores interrupts: the mount is "hung".
    fs.readHooks.set(fs.resolve('hang').ino, () => new Promise(() => undefined));
    const stuck = runProcess('cat', [`${dir}/hang`], { timeoutMs: 60_000 });
    for (let i = 0; i < 200 && (fs.ops.get('read') ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.ops.get('read')).toBe(1);
    // A busy mount: plain umount fails, the helper aborts the connection.
    const cwdHolder = spawnInteractive('sh', ['-c', `cd ${dir} && echo in && exec sleep 30`]);
    await cwdHolder.waitForLine('in');
    const res = await cleanupMount(dir);
    expect(res.found).toBe(1);
    expect(res.aborted).toBe(1);
    expect(await fuseMountsAt(dir)).toEqual([]);
    const cat = await stuck;
    expect(cat.code).not.toBe(0); // the aborted request failed instead of hanging
    expect((await m.ended).reason).toMatch(/unmounted|aborted/);
    cwdHolder.kill();
    await cwdHolder.exited;
  });
});

describe('daemon shutdown paths leave no mount behind', () => {
  async function mounted() {
    const dir = await makeMountDir();
    dirs.push(dir);
    const daemon = startDaemon(dir, { mode: 'exithook' });
    expect(await daemon.waitForLine(/^(mounted|error)/, 60_000)).toBe(`mounted ${dir}`);
    expect(await fuseMountsAt(dir)).toHaveLength(1);
    return { dir, daemon };
  }

  it('process.exit while mounted: the exit hook detaches the mount', async () => {
    const { dir, daemon } = await mounted();
    daemon.writeLine('exit');
    expect((await daemon.exited).code).toBe(0);
    expect(await fuseMountsAt(dir)).toEqual([]);
  });

  it('an uncaught error: the exit hook still ends the connection, so the process can exit', async () => {
    const { dir, daemon } = await mounted();
    daemon.writeLine('throw');
    const r = await daemon.exited;
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/deliberate uncaught error/);
    expect(await fuseMountsAt(dir)).toEqual([]);
  });
});

describe('unmount', () => {
  it('unmount() ends the session; a second call is a no-op; an external umount also ends it', async () => {
    const { dir, m } = await mounts.mount();
    await m.unmount();
    expect(m.isMounted).toBe(false);
    expect((await m.ended).reason).toBe('unmounted');
    await m.unmount();
    expect(await fuseMountsAt(dir)).toEqual([]);

    const second = await mounts.mount();
    const r = await runProcess('umount', ['-c', second.dir]);
    expect(r.code).toBe(0);
    expect((await second.m.ended).reason).toBe('unmounted');
  });

  it('a busy mount is detached lazily and its users are cut off after the grace period', async () => {
    const { dir, m } = await mounts.mount();
    const holder = spawnInteractive('sh', ['-c', `cd ${dir} && echo in && exec sleep 30`]);
    await holder.waitForLine('in');
    await m.unmount({ graceMs: 300 });
    expect(m.isMounted).toBe(false);
    expect(await fuseMountsAt(dir)).toEqual([]);
    holder.kill();
    await holder.exited;
  });
});
