import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { runPython } from '../helpers/sqlite-clients.js';
import { runProcess } from '../helpers/processes.js';
import { MemfsMounts } from './fixture.js';

async function sh(script: string, timeoutMs = 20_000) {
  const r = await runProcess('sh', ['-c', script], { timeoutMs });
  if (r.code !== 0) throw new Error(`sh failed (${r.code}): ${script}\n${r.stderr}`);
  return r.stdout;
}

const mounts = new MemfsMounts();
afterEach(() => mounts.unmountAll());

describe('coreutils through the mount', () => {
  it('cat, dd (big writes), sha256sum, truncate, stat, ls, rm', async () => {
    const { dir, fs } = await mounts.mount({ seed: (f) => f.writeFile('hello.txt', 'hello world\n') });
    expect(await sh(`cat ${dir}/hello.txt`)).toBe('hello world\n');

    await sh(`dd if=/dev/urandom of=${dir}/blob bs=64k count=32 status=none`);
    const blob = fs.content('blob');
    expect(blob.length).toBe(2 * 1024 * 1024);
    expect(fs.ops.get('write')).toBeLessThanOrEqual(32); // 64 KiB per WRITE, not 4 KiB
    const sum = (await sh(`sha256sum ${dir}/blob`)).split(' ')[0];
    expect(sum).toBe(createHash('sha256').update(blob).digest('hex'));
    expect(await sh(`dd if=${dir}/blob bs=1M status=none | wc -c`)).toBe(`${2 * 1024 * 1024}\n`);

    await sh(`truncate -s 100 ${dir}/blob`);
    expect(fs.content('blob')).toEqual(blob.subarray(0, 100));
    await sh(`truncate -s 10000 ${dir}/blob`);
    expect(await sh(`stat -c '%s %F %a' ${dir}/blob`)).toBe('10000 regular file 644\n');
    expect(
      fs
        .content('blob')
        .subarray(100)
        .every((b) => b === 0),
    ).toBe(true);

    expect((await sh(`ls -1 ${dir}`)).split('\n').filter(Boolean).sort()).toEqual(['blob', 'hello.txt']);
    await sh(`rm ${dir}/blob`);
    expect(() => fs.resolve('blob')).toThrow();
    expect(await sh(`ls -1 ${dir}`)).toBe('hello.txt\n');
    const r = await runProcess('cat', [`${dir}/blob`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/No such file/);
  });

  it('1 MiB WRITEs (max_write) arrive intact, buffered and O_DIRECT', async () => {
    const { dir, fs, m } = await mounts.mount();
    expect(m.negotiated.maxWrite).toBe(1 << 20);
    await sh(`dd if=/dev/urandom of=${dir}/big bs=1M count=4 status=none`);
    expect(fs.maxWriteSeen).toBe(1 << 20);
    const big = fs.content('big');
    expect(big.length).toBe(4 << 20);
    expect((await sh(`sha256sum ${dir}/big`)).split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
    const writesBefore = fs.ops.get('write') ?? 0;
    await sh(`dd if=/dev/urandom of=${dir}/direct bs=1M count=3 oflag=direct status=none`);
    expect((fs.ops.get('write') ?? 0) - writesBefore).toBe(3);
    const direct = fs.content('direct');
    expect((await sh(`sha256sum ${dir}/direct`)).split(' ')[0]).toBe(createHash('sha256').update(direct).digest('hex'));
    expect(direct.equals(big.subarray(0, 3 << 20))).toBe(false); // distinct random data, both intact
  });

  it('mkdir, rmdir, mv, symlinks, chmod, touch, statfs and a directory that needs several READDIRs', async () => {
    const { dir, fs } = await mounts.mount({
      seed: (f) => {
        for (let i = 0; i < 300; i++) f.writeFile(`many/file-with-a-rather-long-name-${String(i).padStart(4, '0')}`, `${i}`);
      },
    });
    expect(await sh(`ls -1 ${dir}/many | wc -l`)).toBe('300\n');
    expect(await sh(`ls -1 ${dir}/many | sort | uniq | wc -l`)).toBe('300\n');

    await sh(`mkdir ${dir}/d && echo x > ${dir}/d/f && mv ${dir}/d/f ${dir}/d/g && ln -s g ${dir}/d/link`);
    expect(fs.content('d/g').toString()).toBe('x\n');
    expect(await sh(`readlink ${dir}/d/link && cat ${dir}/d/link`)).toBe('g\nx\n');
    const rmdirFull = await runProcess('rmdir', [`${dir}/d`]);
    expect(rmdirFull.stderr).toMatch(/not empty/);
    await sh(`rm ${dir}/d/g ${dir}/d/link && rmdir ${dir}/d`);
    expect(() => fs.resolve('d')).toThrow();

    await sh(`echo y > ${dir}/t && chmod 600 ${dir}/t && touch -d '2001-02-03 04:05:06 UTC' ${dir}/t`);
    expect(fs.resolve('t').mode & 0o777).toBe(0o600);
    expect(fs.resolve('t').mtimeNs).toBe(981173106n * 1_000_000_000n);
    const before = fs.resolve('t').mtimeNs;
    await sh(`touch ${dir}/t`);
    expect(fs.resolve('t').mtimeNs).toBeGreaterThan(before); // FATTR_MTIME_NOW
    expect(await sh(`stat -f -c '%b %S %l' ${dir}`)).toBe('1000000 4096 255\n');
  });
});

describe('Python file I/O through the mount', () => {
  it('writes, seeks, appends, renames, lists, truncates and fsyncs', async () => {
    const { dir, fs } = await mounts.mount();
    const code = `
import os, sys
d = sys.argv[1]
p = os.path.join(d, 'py.txt')
with open(p, 'wb') as f:
  f.write(b'0123456789')
  f.flush(); os.fsync(f.fileno())
with open(p, 'r+b') as f:
  f.seek(4); f.write(b'XY'); f.seek(0); print(f.read().decode())
with open(p, 'ab') as f:
  f.write(b'tail')
os.rename(p, os.path.join(d, 'renamed.txt'))
print(sorted(os.listdir(d)))
os.truncate(os.path.join(d, 'renamed.txt'), 6)
st = os.stat(os.path.join(d, 'renamed.txt'))
print(st.st_size)
with open(os.path.join(d, 'renamed.txt'), 'rb') as f:
  print(f.read().decode())
`;
    const r = await runPython(code, [dir], { timeoutMs: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['0123XY6789', "['renamed.txt']", '6', '0123XY', '']);
    expect(fs.content('renamed.txt').toString()).toBe('0123XY');
    expect(fs.ops.get('fsync')).toBeGreaterThanOrEqual(1);
  });

  it('RENAME2: renameat2 RENAME_NOREPLACE refuses to replace, RENAME_EXCHANGE swaps', async () => {
    const { dir, fs } = await mounts.mount({ seed: (f) => (f.writeFile('a', 'A'), f.writeFile('b', 'B')) });
    const code = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1].encode()
def r2(a, b, flags):
  rc = libc.renameat2(-100, d + b'/' + a, -100, d + b'/' + b, flags)
  return 0 if rc == 0 else ctypes.get_errno()
print(r2(b'a', b'b', 1))
print(r2(b'a', b'b', 2))
`;
    const r = await runPython(code, [dir]);
    expect(r.stdout.split('\n')).toEqual(['17', '0', '']); // EEXIST, then swapped
    expect(fs.content('a').toString()).toBe('B');
    expect(fs.content('b').toString()).toBe('A');
  });
});

describe('READDIRPLUS', () => {
  it('lists with attributes in one go and counts the kernel references it creates', async () => {
    const { dir, fs, m } = await mounts.mount({
      memfs: { readdirplus: true },
      seed: (f) => {
        for (let i = 0; i < 40; i++) f.writeFile(`d/f${i}`, 'x'.repeat(i));
      },
    });
    expect(m.negotiated.capabilities.has('readdirplus')).toBe(true);
    const out = await sh(`ls -l ${dir}/d | tail -n +2 | wc -l`);
    expect(out).toBe('40\n');
    expect(fs.ops.get('readdirplus')).toBeGreaterThan(0);
    expect(m.lookupCount(fs.resolve('d/f39').ino)).toBeGreaterThanOrEqual(1n);
  });
});
