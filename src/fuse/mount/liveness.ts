import { spawn } from 'node:child_process';

/** What a FUSE mount found at a path turned out to be. */
export type MountLiveness =
  /** A daemon answered: the mount is in use and must not be touched. */
  | { state: 'live' }
  /** The connection is gone (ENOTCONN/ECONNABORTED): no daemon will ever answer; safe to clear. */
  | { state: 'dead'; code: string }
  /** No answer within the time limit: a daemon still holds the connection but does not serve it. */
  | { state: 'unresponsive'; timeoutMs: number };

/**
 * statfs(2) always sends FUSE_STATFS to the daemon (no attribute cache can
 * answer it for the kernel, unlike stat), so its outcome tells a served
 * mount from a dead one. Run in a child: on a mount whose daemon is alive
 * but stuck the call blocks, and once the daemon has read the request it
 * cannot even be killed until the connection ends.
 */
const PROBE = `require('node:fs').statfs(process.argv[1], (err) => process.stdout.write(err ? String(err.code) : 'OK'));`;

const DEAD_CODES = new Set(['ENOTCONN', 'ECONNABORTED']);

/**
 * Asks the FUSE mount at `mountpoint` whether anybody serves it. Any answer
 * from a daemon (success or an error it chose, such as ENOSYS) means live.
 * A probe that outlives `timeoutMs` is signalled and left behind (unref'd):
 * it may sit in the kernel until the mount's connection ends.
 */
export function probeMount(mountpoint: string, timeoutMs = 3000): Promise<MountLiveness> {
  return new Promise((resolve) => {
    let out = '';
    let settled = false;
    const settle = (r: MountLiveness): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const child = spawn(process.execPath, ['-e', PROBE, mountpoint], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      child.unref();
      child.stdout.destroy();
      settle({ state: 'unresponsive', timeoutMs });
    }, timeoutMs);
    child.on('error', () => settle({ state: 'live' })); // cannot tell: never clear what we could not probe
    child.on('close', () => {
      const code = out.trim();
      settle(DEAD_CODES.has(code) ? { state: 'dead', code } : { state: 'live' });
    });
  });
}
