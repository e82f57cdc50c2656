import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../internal/index.js';
import { parseLtxFilename } from '../ltx/index.js';

export interface LtxFileInfo {
  name: string;
  path: string;
  minTXID: bigint;
  maxTXID: bigint;
}

/** LTX files in `dir`, oldest first (by MaxTXID, then MinTXID). Missing dir → []. */
export async function listLtxFiles(dir: string): Promise<LtxFileInfo[]> {
  const names = await namesIn(dir);
  const files: LtxFileInfo[] = [];
  for (const name of names) {
    const parsed = parseLtxFilename(name);
    if (parsed === null) continue;
    files.push({ name, path: join(dir, name), minTXID: parsed.minTXID, maxTXID: parsed.maxTXID });
  }
  files.sort((a, b) => (a.maxTXID === b.maxTXID ? cmp(a.minTXID, b.minTXID) : cmp(a.maxTXID, b.maxTXID)));
  return files;
}

/** Entry names of `dir`; a directory that does not exist has none. */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Removes leftovers of interrupted writes (`*.tmp`); returns their names. */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const names = await namesIn(dir);
  const removed: string[] = [];
  for (const name of names) {
    if (!name.endsWith('.tmp')) continue;
    await unlink(join(dir, name)).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
    removed.push(name);
  }
  return removed;
}
