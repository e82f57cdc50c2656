import { afterEach, describe, expect, it } from 'vitest';
import { FuseErrno } from '../../src/fuse/index.js';
import { runPython } from '../helpers/sqlite-clients.js';
import { runProcess, spawnInteractive } from '../helpers/processes.js';
import { MemfsMounts } from './fixture.js';
import { waitUntil, withTimeout } from '../helpers/wait.js';

const mounts = new MemfsMounts();
afterEach(() => mounts.unmountAll());

describe('INTERRUPT through the kernel', () => {
  it('killing a client blocked in a read aborts the handler; the session keeps serving', async () => {
    const { dir, fs, m } = await mounts.mount({
      seed: (f) => {
        f.writeFile('slow', 'never served', { cache: 'direct' });
        f.writeFile('fast', 'ok\n');
      },
    });
    let entered = 0;
    let resolveAborted!: () => void;
    const aborted = new Promise<void>((r) => (resolveAborted = r));
    fs.readHooks.set(fs.resolve('slow').ino, (ctx) => {
      entered++;
      return new Promise<void>((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          resolveAborted();
          reject(new FuseErrno('EINTR'));
        });
      });
    });

    const child = spawnInteractive('cat', [`${dir}/slow`]);
    await waitUntil(() => entered === 1, 'the read to reach the handler');
    child.kill('SIGKILL');
    await withTimeout(aborted, 10_000, 'AbortSignal of the blocked read');
    const res = await withTimeout(child.exited, 10_000, 'the killed client to exit');
    expect(res.signal).toBe('SIGKILL');
    expect(m.stats().interrupts).toBeGreaterThanOrEqual(1);

    const next = await runProcess('cat', [`${dir}/fast`]);
    expect(next.stdout).toBe('ok\n');
    expect(m.stats().inflight).toBe(0);
  });

  it('F_SETLKW waits in the filesystem, and a killed waiter is interrupted out of it', async () => {
    const { dir, fs, m } = await mounts.mount({ seed: (f) => f.writeFile('lockfile', '') });
    const holder = spawnInteractive('python3', [
      '-u',
      '-c',
      [
        'import fcntl, os, sys',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "print('held', flush=True)",
        'sys.stdin.readline()',
        'fcntl.lockf(fd, fcntl.LOCK_UN)',
        "print('released', flush=True)",
      ].join('\n'),
      `${dir}/lockfile`,
    ]);
    await holder.waitForLine('held');
    // Started only once the holder has the lock, so it must wait.
    const waiter = spawnInteractive('python3', [
      '-u',
      '-c',
      [
        'import fcntl, os, sys',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        "print('waiting', flush=True)",
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "print('got it', flush=True)",
      ].join('\n'),
      `${dir}/lockfile`,
    ]);
    try {
      await waiter.waitForLine('waiting');
      await waitUntil(() => (fs.ops.get('setlkw') ?? 0) >= 2, 'the blocking SETLKW');
      waiter.kill('SIGKILL');
      const w = await withTimeout(waiter.exited, 10_000, 'the killed waiter to exit');
      expect(w.signal).toBe('SIGKILL');
      expect(w.stdout).not.toMatch(/got it/);
      expect(m.stats().interrupts).toBeGreaterThanOrEqual(1);
      expect(fs.locks.held(fs.resolve('lockfile').ino).map((l) => l.pid)).toEqual([holder.pid]);

      holder.writeLine('release');
      await holder.waitForLine('released');
      const third = await runPython(
        'import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nfcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nprint("locked")',
        [`${dir}/lockfile`],
      );
      expect(third.stdout).toBe('locked\n');
    } finally {
      holder.kill();
      waiter.kill();
      await holder.exited;
      await waiter.exited;
    }
  });
});
