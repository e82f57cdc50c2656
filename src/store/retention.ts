import { describeError } from '../internal/index.js';
import { StoreError } from './errors.js';
import { listLtxFiles } from './ltx-files.js';
import type { StoreFS } from './sys.js';

/**
 * Deletes LTX files last modified before `now - retentionMs`, never the
 * newest one (it defines the database's position). Returns the names
 * removed. A file that cannot be removed does not stop the others: every
 * failure is collected and reported at the end in one ERR_STORE_RETENTION
 * error (its `removed` lists what did go), which the caller logs.
 */
export async function enforceRetention(sys: StoreFS, ltxDir: string, retentionMs: number, now: number): Promise<string[]> {
  const files = await listLtxFiles(sys, ltxDir);
  const cutoff = now - retentionMs;
  const removed: string[] = [];
  const failures: string[] = [];
  for (const file of files.slice(0, -1)) {
    try {
      const st = await sys.stat(file.path);
      if (st === null || st.mtimeMs >= cutoff) continue;
      if (await sys.unlink(file.path)) removed.push(file.name);
    } catch (err) {
      failures.push(`${file.name}: ${describeError(err)}`);
    }
  }
  if (failures.length > 0) {
    throw new RetentionError(`${ltxDir}: could not remove ${failures.length} expired LTX file(s): ${failures.join('; ')}`, removed);
  }
  return removed;
}

export class RetentionError extends StoreError {
  constructor(
    message: string,
    /** Files that were removed despite the failures. */
    readonly removed: string[],
  ) {
    super('ERR_STORE_RETENTION', message);
  }
}
