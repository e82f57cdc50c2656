import { stat, unlink } from 'node:fs/promises';
import { isErrno } from '../internal/errors.js';
import { listLtxFiles } from './ltx-files.js';

/**
 * Deletes LTX files last modified before `now - retentionMs`, never the
 * newest one (it defines the database's position). Returns the names
 * removed. Errors propagate to the caller, which logs them.
 */
export async function enforceRetention(ltxDir: string, retentionMs: number, now: number): Promise<string[]> {
  const files = await listLtxFiles(ltxDir);
  const cutoff = now - retentionMs;
  const removed: string[] = [];
  for (const file of files.slice(0, -1)) {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file.path)).mtimeMs;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      throw err;
    }
    if (mtimeMs >= cutoff) continue;
    try {
      await unlink(file.path);
      removed.push(file.name);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
  return removed;
}
