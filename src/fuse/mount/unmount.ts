import type { Logger } from '../../internal/index.js';
import { FuseMountError } from '../errors.js';
import { describeResult, runCommand, type CommandResult } from './command.js';
import { abortConnection } from './fusectl.js';
import { fuseMountsAt, type MountEntry } from './mountinfo.js';

/**
 * umount(8) with --no-canonicalize: without it umount stats the target,
 * which blocks forever on a FUSE mount whose daemon does not answer (found
 * here: a mount whose INIT was never answered hangs plain `umount`).
 */
export function umount(mountpoint: string, opts: { lazy?: boolean; timeoutMs?: number } = {}): Promise<CommandResult> {
  const args = opts.lazy ? ['-c', '-l', mountpoint] : ['-c', mountpoint];
  return runCommand('umount', args, { timeoutMs: opts.timeoutMs ?? 10_000 });
}

export interface ClearResult {
  /** FUSE mounts that were at the path. */
  found: number;
  /** Of those, how many needed their connection aborted. */
  aborted: number;
}

/**
 * Removes every FUSE mount at `mountpoint` (stale, hung or live), found via
 * /proc/self/mountinfo so the mountpoint itself is never touched: plain
 * umount first; if that fails, abort the connection through
 * /sys/fs/fuse/connections/<minor>/abort and unmount again, lazily as a last
 * resort. Throws ERR_FUSE_UNMOUNT_FAILED if a mount survives all that.
 */
export async function clearFuseMounts(mountpoint: string, opts: { logger?: Logger; timeoutMs?: number } = {}): Promise<ClearResult> {
  const result: ClearResult = { found: 0, aborted: 0 };
  // Mounts can be stacked; each pass removes the top one.
  for (let pass = 0; pass < 16; pass++) {
    const entries = await fuseMountsAt(mountpoint);
    const top = entries[entries.length - 1];
    if (!top) return result;
    result.found++;
    if (await removeTopMount(mountpoint, top, opts)) result.aborted++;
  }
  throw new FuseMountError('ERR_FUSE_UNMOUNT_FAILED', `fuse: ${mountpoint} still has FUSE mounts after 16 unmounts`);
}

/**
 * Removes the topmost mount at `mountpoint` (`top`, its mountinfo entry):
 * umount; if that fails, abort its connection and umount again, lazily as
 * a last resort. Returns whether the connection had to be aborted.
 */
export async function removeTopMount(
  mountpoint: string,
  top: MountEntry,
  opts: { logger?: Logger; timeoutMs?: number } = {},
): Promise<boolean> {
  const first = await umount(mountpoint, opts);
  if (first.code === 0) return false;
  opts.logger?.warn({ mountpoint, connection: top.minor, umount: describeResult(first) }, 'fuse: unmount failed; aborting the connection');
  const aborted = await abortConnection(top.minor, opts.logger);
  const second = await umount(mountpoint, opts);
  if (second.code === 0) return aborted;
  const lazy = await umount(mountpoint, { ...opts, lazy: true });
  if (lazy.code === 0) return aborted;
  throw new FuseMountError(
    'ERR_FUSE_UNMOUNT_FAILED',
    `fuse: cannot unmount ${mountpoint} (connection ${top.minor}): ${describeResult(lazy)}`,
  );
}
