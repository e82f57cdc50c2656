import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../internal/index.js';
import { parseLtxFilename } from '../ltx/index.js';

export interface LtxUsage {
  /** LTX files in the directory. */
  count: number;
  /** Their total size in bytes. */
  bytes: number;
}

/**
 * How many LTX files one database keeps and how many bytes they take, for
 * `/metrics`. LTX files are written under a temporary name and renamed into
 * place, so a file's size never changes while its name exists: each
 * measurement reads the directory once and stats only names it has not seen
 * (a scrape must not flood the thread pool the FUSE session also uses). A
 * name rewritten in place (a replica replacing divergent history) is
 * dropped with forget() when the store reports the change.
 */
export class LtxDirUsage {
  private readonly sizes = new Map<string, number>();
  /** Bumped by forget(): a stat started before it may have seen the old file. */
  private epoch = 0;

  constructor(readonly dir: string) {}

  forget(name: string): void {
    this.sizes.delete(name);
    this.epoch++;
  }

  async measure(): Promise<LtxUsage> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) {
        this.sizes.clear();
        return { count: 0, bytes: 0 };
      }
      throw err;
    }
    const present = new Set<string>();
    let count = 0;
    let bytes = 0;
    const epoch = this.epoch;
    for (const name of names) {
      if (parseLtxFilename(name) === null) continue;
      present.add(name);
      let size = this.sizes.get(name);
      if (size === undefined) {
        try {
          size = (await stat(join(this.dir, name))).size;
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue; // removed by retention meanwhile
          throw err;
        }
        if (this.epoch === epoch) this.sizes.set(name, size);
      }
      count++;
      bytes += size;
    }
    for (const name of this.sizes.keys()) if (!present.has(name)) this.sizes.delete(name);
    return { count, bytes };
  }
}
