import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { FUSECTL_DIR } from './fusectl.js';

/** What the registry needs from a live mount. */
export interface RegisteredMount {
  readonly mountpoint: string;
  readonly isMounted: boolean;
  /** Device minor: /sys/fs/fuse/connections/<connection>. */
  readonly connection: number | undefined;
  unmount(): Promise<void>;
}

interface Entry {
  mount: RegisteredMount;
  unmountOnExit: boolean;
}

const mounts = new Map<string, Entry | 'reserved'>();
let exitHookInstalled = false;

/** Claims `mountpoint` for a mount in progress; false if this process already serves or is mounting it. */
export function reserve(mountpoint: string): boolean {
  if (mounts.has(mountpoint)) return false;
  mounts.set(mountpoint, 'reserved');
  return true;
}

export function register(m: RegisteredMount, unmountOnExit: boolean): void {
  mounts.set(m.mountpoint, { mount: m, unmountOnExit });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', endConnectionsAtExit);
  }
}

/** Frees `mountpoint`; with `owner`, only if that mount still holds it. */
export function release(mountpoint: string, owner?: RegisteredMount): void {
  const cur = mounts.get(mountpoint);
  if (owner === undefined ? cur === 'reserved' : cur !== undefined && cur !== 'reserved' && cur.mount === owner) mounts.delete(mountpoint);
}

function liveEntries(): Entry[] {
  const out: Entry[] = [];
  for (const e of mounts.values()) if (e !== 'reserved' && e.mount.isMounted) out.push(e);
  return out;
}

/**
 * Runs on process exit with sessions still running, when nothing
 * asynchronous can run any more. Without it the process cannot even exit:
 * Node joins its worker threads at exit, and a reader thread parked in
 * read(2) on /dev/fuse returns only when the connection ends
 * (Worker.terminate() cannot interrupt it; measured: a bare process.exit()
 * while mounted hangs forever). So every live connection is
 * aborted (which also fails any request still waiting on it, instead of
 * leaving clients hung), and, unless the mount asked otherwise, detached
 * with `umount -c -l`, which neither stats the mount nor waits for us.
 */
function endConnectionsAtExit(): void {
  const live = liveEntries();
  if (live.length === 0) return;
  let fusectlMountedHere = false;
  for (const { mount, unmountOnExit } of live) {
    let aborted = false;
    if (mount.connection !== undefined) {
      aborted = abortSync(mount.connection);
      if (!aborted && !fusectlMountedHere) {
        fusectlMountedHere = spawnSync('mount', ['-t', 'fusectl', 'fusectl', FUSECTL_DIR], { stdio: 'ignore', timeout: 2000 }).status === 0;
        aborted = fusectlMountedHere && abortSync(mount.connection);
      }
    }
    if (!unmountOnExit) continue;
    // A live (not aborted) connection plus a descriptor of ours on the mount
    // would deadlock: the child's exec closes it, the kernel sends FLUSH,
    // and nobody can answer while this thread waits for the child.
    if (!aborted && holdsDescriptorsUnder(mount.mountpoint)) {
      process.stderr.write(
        `fuse: not unmounting ${mount.mountpoint} at exit: files still open on it and its connection could not be aborted\n`,
      );
      continue;
    }
    spawnSync('umount', ['-c', '-l', mount.mountpoint], { stdio: 'ignore', timeout: 2000 });
  }
  if (fusectlMountedHere) spawnSync('umount', ['-c', FUSECTL_DIR], { stdio: 'ignore', timeout: 2000 });
}

function abortSync(minor: number): boolean {
  try {
    writeFileSync(`${FUSECTL_DIR}/${minor}/abort`, '1');
    return true;
  } catch {
    return false;
  }
}

/** True if any open descriptor of this process names a path under `dir` (readlink of /proc/self/fd never enters the FUSE filesystem). */
function holdsDescriptorsUnder(dir: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return true; // Cannot tell: take the safe side.
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target === dir || target.startsWith(dir + '/')) return true;
    } catch {
      // The descriptor closed meanwhile.
    }
  }
  return false;
}
