import { afterEach, describe, expect, it } from 'vitest';
import { runProcess, spawnInteractive } from '../helpers/processes.js';
import { MemfsMounts } from './fixture.js';
import { waitUntil } from '../helpers/wait.js';

/** A python process holding `path` open: prints 16 bytes at offset 0 now and after every stdin line. */
function holdingReader(path: string) {
  const code = [
    'import os, sys',
    'fd = os.open(sys.argv[1], os.O_RDONLY)',
    'print(os.pread(fd, 16, 0).decode(), flush=True)',
    'for line in sys.stdin:',
    '    print(os.pread(fd, 16, 0).decode(), flush=True)',
  ].join('\n');
  return spawnInteractive('python3', ['-u', '-c', code, path]);
}

const mounts = new MemfsMounts();
afterEach(() => mounts.unmountAll());

describe('kernel cache invalidation', () => {
  it('FUSE_NOTIFY_INVAL_INODE: a reader holding the file open sees bytes changed behind the kernel only after the notification', async () => {
    const { dir, fs, m } = await mounts.mount({ seed: (f) => f.writeFile('inv.txt', 'A'.repeat(8192), { cache: 'keep' }) });
    const ino = fs.resolve('inv.txt').ino;
    const reader = holdingReader(`${dir}/inv.txt`);
    try {
      expect(await reader.waitForLine(/^A{16}$/)).toBe('A'.repeat(16));
      const readsBefore = fs.ops.get('read') ?? 0;

      fs.patchFile('inv.txt', 0, Buffer.from('B'.repeat(16)));
      reader.writeLine('again');
      expect(await reader.waitForLine(/^.{16}$/)).toBe('A'.repeat(16)); // served from the page cache (keep_cache)
      expect(fs.ops.get('read') ?? 0).toBe(readsBefore);

      expect(await m.notifyInvalInode(ino, 0n, 0n)).toBe(true);
      reader.writeLine('again');
      expect(await reader.waitForLine(/^.{16}$/)).toBe('B'.repeat(16));
      expect(fs.ops.get('read') ?? 0).toBeGreaterThan(readsBefore);
    } finally {
      reader.end();
      await reader.exited;
    }
  });

  it('an offset < 0 invalidates attributes only (a changed size shows up in stat)', async () => {
    const { dir, fs, m } = await mounts.mount({
      memfs: { attrTimeoutSec: 3600, entryTimeoutSec: 3600 },
      seed: (f) => f.writeFile('sz', '12345'),
    });
    const stat = async () => (await runProcess('stat', ['-c', '%s', `${dir}/sz`])).stdout.trim();
    expect(await stat()).toBe('5');
    fs.patchFile('sz', 5, Buffer.from('6789'));
    expect(await stat()).toBe('5'); // attributes cached for an hour
    expect(await m.notifyInvalInode(fs.resolve('sz').ino, -1n)).toBe(true);
    expect(await stat()).toBe('9');
  });

  it('FUSE_NOTIFY_INVAL_ENTRY makes a name created behind the kernel visible despite a cached negative entry', async () => {
    const { dir, fs, m } = await mounts.mount({ memfs: { negativeTimeoutSec: 3600 } });
    const cat = () => runProcess('cat', [`${dir}/late.txt`]);
    expect((await cat()).code).not.toBe(0);
    expect(fs.lookupCalls.get('late.txt')).toBe(1);
    expect((await cat()).code).not.toBe(0);
    expect(fs.lookupCalls.get('late.txt')).toBe(1); // negative entry cached: no second LOOKUP

    fs.writeFile('late.txt', 'now here\n');
    expect((await cat()).stderr).toMatch(/No such file/); // still cached
    expect(await m.notifyInvalEntry(1n, 'late.txt')).toBe(true);
    const r = await cat();
    expect(r.stdout).toBe('now here\n');
    expect(fs.lookupCalls.get('late.txt')).toBe(2);
    expect(await m.notifyInvalEntry(1n, 'never-looked-up')).toBe(false); // nothing cached: kernel says ENOENT
  });

  it('dropping a cached entry makes the kernel FORGET the inode; lookup counts go back to 0', async () => {
    const { dir, fs, m } = await mounts.mount({ memfs: { entryTimeoutSec: 3600 }, seed: (f) => f.writeFile('f', 'x') });
    const ino = fs.resolve('f').ino;
    expect((await runProcess('stat', [`${dir}/f`])).code).toBe(0);
    expect(m.lookupCount(ino)).toBe(1n);
    expect(await m.notifyInvalEntry(1n, 'f')).toBe(true);
    await waitUntil(() => fs.forgets.some((f) => f.nodeid === ino), 'FORGET of the inode');
    expect(m.lookupCount(ino)).toBe(0n);
    expect(fs.forgets.find((f) => f.nodeid === ino)?.remaining).toBe(0n);
  });

  it('FUSE_NOTIFY_STORE puts bytes into the page cache of an open file', async () => {
    const { dir, fs, m } = await mounts.mount({ seed: (f) => f.writeFile('st.txt', 'a'.repeat(4096), { cache: 'keep' }) });
    const reader = holdingReader(`${dir}/st.txt`);
    try {
      await reader.waitForLine(/^a{16}$/);
      expect(await m.notifyStore(fs.resolve('st.txt').ino, 0n, Buffer.from('stored-by-fuse!!'))).toBe(true);
      reader.writeLine('again');
      expect(await reader.waitForLine(/^.{16}$/)).toBe('stored-by-fuse!!');
      expect(fs.content('st.txt').subarray(0, 1).toString()).toBe('a'); // the filesystem itself is unchanged
    } finally {
      reader.end();
      await reader.exited;
    }
  });

  it('FUSE_NOTIFY_DELETE removes a cached positive entry', async () => {
    const { dir, fs, m } = await mounts.mount({
      memfs: { entryTimeoutSec: 3600, attrTimeoutSec: 3600 },
      seed: (f) => f.writeFile('gone', 'x'),
    });
    const ino = fs.resolve('gone').ino;
    expect((await runProcess('stat', [`${dir}/gone`])).code).toBe(0);
    fs.resolve('').children!.delete('gone'); // deleted behind the kernel's back
    expect((await runProcess('stat', [`${dir}/gone`])).code).toBe(0); // still cached
    expect(await m.notifyDelete(1n, ino, 'gone')).toBe(true);
    const r = await runProcess('stat', [`${dir}/gone`]);
    expect(r.stderr).toMatch(/No such file/);
  });
});
