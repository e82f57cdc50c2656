import type { Logger } from '../../internal/index.js';
import { FuseMountError } from '../errors.js';
import { probeMount } from './liveness.js';
import { fuseMountsAt, type MountEntry } from './mountinfo.js';
import { removeTopMount } from './unmount.js';

/** What to do with a FUSE mount found at the path this process wants to mount on. */
export type ExistingMountPolicy = 'clear' | 'error';

function describeEntry(e: MountEntry): string {
  return `${e.fstype} ${e.source} (connection ${e.minor})`;
}

/**
 * Throws unless the topmost FUSE mount at `mp` (`top`) may be cleared:
 * with 'error' none may; with 'clear' only a dead one (its daemon gone). A
 * mount another process still serves is that process's business: clearing
 * it would leave that daemon running, believing it serves the path, while
 * its applications write to the directory underneath.
 */
async function checkClearable(mp: string, top: MountEntry, policy: ExistingMountPolicy, probeTimeoutMs: number): Promise<string> {
  if (policy === 'error') {
    throw new FuseMountError('ERR_FUSE_ALREADY_MOUNTED', `mountpoint ${mp} already has a FUSE mount: ${describeEntry(top)}`);
  }
  const live = await probeMount(mp, probeTimeoutMs);
  if (live.state === 'live') {
    throw new FuseMountError(
      'ERR_FUSE_ALREADY_MOUNTED',
      `mountpoint ${mp} is in use: a running FUSE daemon serves it (${describeEntry(top)}); stop that process first, or mount elsewhere`,
    );
  }
  if (live.state === 'unresponsive') {
    throw new FuseMountError(
      'ERR_FUSE_MOUNT_UNRESPONSIVE',
      `mountpoint ${mp} has a FUSE mount (${describeEntry(top)}) whose daemon is still attached but did not answer within ` +
        `${live.timeoutMs} ms; stop or kill that process (its mount is then cleared on the next start), or abort the connection: ` +
        `echo 1 > /sys/fs/fuse/connections/${top.minor}/abort`,
    );
  }
  return live.code;
}

/**
 * Validates `mp` for a mount without changing anything: a FUSE mount on it
 * must be dead (it is cleared by mount() later). Returns whether one is.
 */
export async function checkExistingMounts(mp: string, policy: ExistingMountPolicy, probeTimeoutMs: number): Promise<boolean> {
  const top = (await fuseMountsAt(mp)).at(-1);
  if (top === undefined) return false;
  await checkClearable(mp, top, policy, probeTimeoutMs);
  return true;
}

/**
 * Removes the dead FUSE mounts at `mp`, topmost first (mounts stack), and
 * stops at the first one that is not dead. Never touches the path itself
 * except through the probe's child process.
 */
export async function clearDeadMounts(mp: string, policy: ExistingMountPolicy, probeTimeoutMs: number, logger: Logger): Promise<void> {
  for (let pass = 0; pass < 16; pass++) {
    const top = (await fuseMountsAt(mp)).at(-1);
    if (top === undefined) return;
    const code = await checkClearable(mp, top, policy, probeTimeoutMs);
    logger.warn({ mountpoint: mp, existing: describeEntry(top), probe: code }, 'fuse: clearing a dead FUSE mount at the mountpoint');
    await removeTopMount(mp, top, { logger });
  }
  throw new FuseMountError('ERR_FUSE_UNMOUNT_FAILED', `fuse: ${mp} still has FUSE mounts after 16 unmounts`);
}
