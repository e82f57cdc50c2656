import { spawn, type StdioOptions } from 'node:child_process';

export interface CommandResult {
  /** Exit code; null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the program could not be started (ENOENT...). */
  spawnError?: Error;
}

export interface CommandOptions {
  timeoutMs?: number;
  /** Extra descriptors from fd 3 on (mount(8) gets /dev/fuse as its fd 3). */
  extraFds?: number[];
}

/**
 * Runs a helper program (mount, umount) asynchronously: the event loop keeps
 * serving FUSE requests meanwhile, which mount(8)/umount(8) may need. Killed
 * by PID when it outlives the time limit.
 */
export function runCommand(cmd: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])];
    let child;
    try {
      child = spawn(cmd, args, { stdio });
    } catch (err) {
      resolve({ code: null, signal: null, stdout: '', stderr: '', timedOut: false, spawnError: err as Error });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let spawnError: Error | undefined;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 65536) stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 65536) stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }, timeoutMs);
    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: CommandResult = { code, signal, stdout, stderr, timedOut };
      if (spawnError) r.spawnError = spawnError;
      resolve(r);
    });
  });
}

export function describeResult(r: CommandResult): string {
  if (r.spawnError) return `could not start: ${r.spawnError.message}`;
  if (r.timedOut) return 'timed out';
  const msg = (r.stderr || r.stdout).trim();
  return `${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${msg ? `: ${msg}` : ''}`;
}
