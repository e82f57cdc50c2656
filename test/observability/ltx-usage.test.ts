import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LtxDirUsage } from '../../src/store/ltx-usage.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'litefs-ltx-usage-'));
  dirs.push(d);
  return d;
}

const name = (a: number, b = a): string => `${a.toString(16).padStart(16, '0')}-${b.toString(16).padStart(16, '0')}.ltx`;

describe('LtxDirUsage', () => {
  it('counts LTX files and bytes, ignoring temporary and foreign files', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, name(1)), Buffer.alloc(300));
    await writeFile(path.join(dir, name(2)), Buffer.alloc(50));
    await writeFile(path.join(dir, `${name(3)}.tmp`), Buffer.alloc(1000));
    await writeFile(path.join(dir, 'notes.txt'), 'x');
    const u = new LtxDirUsage(dir);
    expect(await u.measure()).toEqual({ count: 2, bytes: 350 });
  });

  it('follows files appearing and disappearing; a forgotten name is measured again', async () => {
    const dir = await tempDir();
    const u = new LtxDirUsage(dir);
    await writeFile(path.join(dir, name(1)), Buffer.alloc(10));
    expect(await u.measure()).toEqual({ count: 1, bytes: 10 });
    await writeFile(path.join(dir, name(2)), Buffer.alloc(20));
    expect(await u.measure()).toEqual({ count: 2, bytes: 30 });
    await unlink(path.join(dir, name(1)));
    expect(await u.measure()).toEqual({ count: 1, bytes: 20 });

    // Sizes are cached per name: a rewrite under the same name is only
    // seen after forget() (the store reports such rewrites as changes).
    await writeFile(path.join(dir, name(2)), Buffer.alloc(70));
    expect(await u.measure()).toEqual({ count: 1, bytes: 20 });
    u.forget(name(2));
    expect(await u.measure()).toEqual({ count: 1, bytes: 70 });
  });

  it('reports nothing for a missing directory', async () => {
    const dir = await tempDir();
    expect(await new LtxDirUsage(path.join(dir, 'absent')).measure()).toEqual({ count: 0, bytes: 0 });
  });
});
