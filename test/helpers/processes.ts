import { spawn, type ChildProcess } from 'node:child_process';

/** Outcome of a child process run by these helpers. */
export interface ChildResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the time limit expired and the child was killed (by PID, SIGKILL). */
  timedOut: boolean;
  pid: number | undefined;
}

export interface RunOptions {
  /** Kill the child (SIGKILL, by PID) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user/group (the test process is root). */
  uid?: number;
  gid?: number;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

function killByPid(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already exited.
  }
}

/**
 * Runs a program asynchronously (never spawnSync: the test process may be
 * serving a FUSE mount the child uses) and collects its output.
 */
export function runProcess(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killByPid(child.pid);
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, pid: child.pid });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** A long-lived child driven line by line over stdin/stdout. */
export interface InteractiveChild {
  readonly pid: number | undefined;
  readonly child: ChildProcess;
  /** Resolves with the first stdout line (not yet consumed) matching `match`; rejects on timeout or exit. */
  waitForLine(match: RegExp | string, timeoutMs?: number): Promise<string>;
  writeLine(line: string): void;
  /** Closes stdin. */
  end(): void;
  kill(signal?: NodeJS.Signals): void;
  /** Settles when the child has exited, with everything it printed. */
  readonly exited: Promise<ChildResult>;
}

/**
 * Starts a child whose progress is observed line by line, e.g. a process
 * that takes a lock, prints "locked", and waits for a line on stdin before
 * releasing it. Killed by PID after `timeoutMs` (default 60 s).
 */
export function spawnInteractive(cmd: string, args: readonly string[], opts: Omit<RunOptions, 'input'> = {}): InteractiveChild {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    uid: opts.uid,
    gid: opts.gid,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let consumed = 0;
  let timedOut = false;
  const lines: string[] = [];
  let partial = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const l of [...listeners]) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin!.on('error', () => undefined);
  const timer = setTimeout(() => {
    timedOut = true;
    killByPid(child.pid);
  }, opts.timeoutMs ?? 60_000);
  let exitedFlag = false;
  const exited = new Promise<ChildResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      exitedFlag = true;
      for (const l of [...listeners]) l();
      resolve({ code, signal, stdout, stderr, timedOut, pid: child.pid });
    });
    child.on('error', (err) => {
      stderr += String(err);
    });
  });
  return {
    pid: child.pid,
    child,
    exited,
    waitForLine(match, timeoutMs = 20_000) {
      const test = (l: string): boolean => (typeof match === 'string' ? l.includes(match) : match.test(l));
      return new Promise((resolve, reject) => {
        const check = (): void => {
          while (consumed < lines.length) {
            const l = lines[consumed++]!;
            if (test(l)) {
              cleanup();
              resolve(l);
              return;
            }
          }
          if (exitedFlag) {
            cleanup();
            reject(new Error(`child ${child.pid} exited before printing ${String(match)}; stdout=${stdout} stderr=${stderr}`));
          }
        };
        const t = setTimeout(() => {
          cleanup();
          reject(new Error(`child ${child.pid} did not print ${String(match)} within ${timeoutMs} ms; stdout=${stdout} stderr=${stderr}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(t);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    writeLine(line) {
      child.stdin!.write(line + '\n');
    },
    end() {
      child.stdin!.end();
    },
    kill(signal = 'SIGKILL') {
      killByPid(child.pid, signal);
    },
  };
}
