import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { DurableWriter } from '../../src/store/durable-writer.js';

let dir: string | null = null;
const writer = new DurableWriter();

afterEach(async () => {
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
  await writer.close();
});

it('writes every file whole under its final name, on the thread at first and inline once the disk proves fast', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'durable-writer-'));
  // The first writes go to the thread (no measurement yet); later ones may
  // run inline. Either way the bytes and names must be the same.
  for (let i = 0; i < 40; i++) await writer.write(path.join(dir, `f${i}`), Buffer.from(`content ${i}`.repeat(i + 1)));
  const names = (await readdir(dir)).sort();
  expect(names).toHaveLength(40);
  expect(names.some((n) => n.endsWith('.tmp'))).toBe(false);
  for (let i = 0; i < 40; i++) expect(await readFile(path.join(dir, `f${i}`), 'utf8')).toBe(`content ${i}`.repeat(i + 1));
});

it('rejects with the failing step errno and leaves no temporary file', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'durable-writer-'));
  await expect(writer.write(path.join(dir, 'missing', 'f'), Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOENT' });
  // A directory in place of the target: the rename fails after the temp file was written.
  await writer.write(path.join(dir, 'ok'), Buffer.from('x'));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.join(dir, 'taken', 'inner'), { recursive: true });
  await expect(writer.write(path.join(dir, 'taken'), Buffer.from('y'))).rejects.toHaveProperty('code');
  expect((await readdir(dir)).sort()).toEqual(['ok', 'taken']);
});
