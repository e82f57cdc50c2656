import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

/** Signals passed on to a supervised application. */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * Starts an application: a string runs through /bin/sh -c (as `exec` entries
 * in litefs.yml are written), an array is executed directly. It inherits
 * stdio and the environment.
 */
export function startChild(cmd: string | readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  if (typeof cmd === 'string') return spawn('/bin/sh', ['-c', cmd], { stdio: 'inherit', env });
  const [file, ...args] = cmd;
  if (file === undefined) throw new Error('empty command');
  return spawn(file, args, { stdio: 'inherit', env });
}

/** Relays this process's signals to `child` until it exits; returns the remover. */
export function forwardSignals(child: ChildProcess, onSignal?: (s: NodeJS.Signals) => void): () => void {
  const handlers = FORWARDED.map((s) => {
    const h = (): void => {
      onSignal?.(s);
      if (child.exitCode === null && child.signalCode === null) child.kill(s);
    };
    process.on(s, h);
    return [s, h] as const;
  });
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}

/** The child's exit, as a shell would report it (128 + signal number when killed). */
export function exitCodeOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (code !== null) resolve(code);
      else resolve(128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
    };
    if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode, child.signalCode);
    child.once('exit', done);
    child.once('error', () => resolve(127));
  });
}
