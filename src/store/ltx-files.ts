import { join } from 'node:path';
import { parseLtxFilename } from '../ltx/index.js';
import type { StoreFS } from './sys.js';

export interface LtxFileInfo {
  name: string;
  path: string;
  minTXID: bigint;
  maxTXID: bigint;
}

/** LTX files in `dir`, oldest first (by MaxTXID, then MinTXID). Missing dir → []. */
export async function listLtxFiles(sys: StoreFS, dir: string): Promise<LtxFileInfo[]> {
  const files: LtxFileInfo[] = [];
  for (const name of await sys.list(dir)) {
    const parsed = parseLtxFilename(name);
    if (parsed === null) continue;
    files.push({ name, path: join(dir, name), minTXID: parsed.minTXID, maxTXID: parsed.maxTXID });
  }
  files.sort((a, b) => (a.maxTXID === b.maxTXID ? cmp(a.minTXID, b.minTXID) : cmp(a.maxTXID, b.maxTXID)));
  return files;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Removes leftovers of interrupted writes (`*.tmp`); returns their names. */
export async function removeTempFiles(sys: StoreFS, dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await sys.list(dir)) {
    if (!name.endsWith('.tmp')) continue;
    await sys.unlink(join(dir, name));
    removed.push(name);
  }
  return removed;
}
