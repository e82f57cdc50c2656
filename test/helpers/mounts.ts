import { mkdtemp, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { clearFuseMounts, fuseMountsAt, type ClearResult, type FuseMount } from '../../src/fuse/index.js';

/** A fresh empty directory under the OS temp dir to mount on. */
export function makeMountDir(prefix = 'fuse-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Removes every FUSE mount at `mountpoint`, whatever its state: umount; on
 * failure abort the connection via /sys/fs/fuse/connections/<minor>/abort
 * (minor from /proc/self/mountinfo), umount again, then umount -l. Never
 * touches the mountpoint itself, so it cannot hang on a dead mount. Safe in
 * afterEach: a path with no mount is a no-op.
 */
export async function cleanupMount(mountpoint: string, mount?: FuseMount): Promise<ClearResult> {
  if (mount?.isMounted) {
    try {
      await mount.unmount({ graceMs: 1000 });
    } catch {
      // Fall through to the forceful path.
    }
  }
  return clearFuseMounts(path.resolve(mountpoint));
}

/** cleanupMount, then removes the (now plain, empty) directory. */
export async function removeMountDir(mountpoint: string, mount?: FuseMount): Promise<void> {
  await cleanupMount(mountpoint, mount);
  if ((await fuseMountsAt(path.resolve(mountpoint))).length === 0) await rmdir(mountpoint).catch(() => undefined);
}
