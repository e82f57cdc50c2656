import { writeFile } from 'node:fs/promises';
import type { Logger } from '../../internal/index.js';
import { runCommand } from './command.js';
import { readMountinfo } from './mountinfo.js';

export const FUSECTL_DIR = '/sys/fs/fuse/connections';

/**
 * Aborts FUSE connection `minor` (the device minor of the mount): every
 * request waiting on it fails, the daemon's reads fail with ENODEV, and the
 * mount can then be unmounted. The fusectl filesystem is mounted for the
 * occasion if it is not (containers often lack it), and unmounted again.
 * Returns false when the connection does not exist (already gone).
 */
export async function abortConnection(minor: number, logger?: Logger): Promise<boolean> {
  const mounted = (await readMountinfo()).some((e) => e.fstype === 'fusectl' && e.mountpoint === FUSECTL_DIR);
  let mountedHere = false;
  if (!mounted) {
    const r = await runCommand('mount', ['-t', 'fusectl', 'fusectl', FUSECTL_DIR], { timeoutMs: 5000 });
    mountedHere = r.code === 0;
    if (!mountedHere) logger?.warn({ stderr: r.stderr.trim() }, 'fuse: could not mount fusectl to abort a connection');
  }
  try {
    await writeFile(`${FUSECTL_DIR}/${minor}/abort`, '1');
    logger?.warn({ connection: minor }, 'fuse: aborted connection');
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return false;
    throw err;
  } finally {
    if (mountedHere) await runCommand('umount', ['-c', FUSECTL_DIR], { timeoutMs: 5000 });
  }
}
