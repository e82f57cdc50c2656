import { afterEach, describe, expect, it } from 'vitest';
import { runPython } from '../helpers/sqlite-clients.js';
import { spawnInteractive } from '../helpers/processes.js';
import { MemfsMounts } from './fixture.js';
import { waitUntil } from '../helpers/wait.js';

const mounts = new MemfsMounts();
afterEach(() => mounts.unmountAll());

describe('POSIX, OFD and flock locks forwarded to the filesystem', () => {
  it('F_GETLK reports the conflicting holder; OFD locks are owned per open file description', async () => {
    const { dir, fs } = await mounts.mount({ seed: (f) => f.writeFile('g', '') });
    const holder = spawnInteractive('python3', [
      '-u',
      '-c',
      [
        'import fcntl, os, sys',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 100)',
        "print('held', os.getpid(), flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
      `${dir}/g`,
    ]);
    try {
      const pid = Number((await holder.waitForLine('held')).split(' ')[1]);
      const probe = await runPython(
        [
          'import fcntl, os, struct, sys',
          'fd = os.open(sys.argv[1], os.O_RDWR)',
          "q = struct.pack('hhqqi', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)",
          "t, w, start, ln, pid = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, q))",
          'print(t == fcntl.F_WRLCK, start, ln, pid)',
          "q = struct.pack('hhqqi', fcntl.F_WRLCK, os.SEEK_SET, 200, 10, 0)",
          "t, w, start, ln, pid = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, q))",
          'print(t == fcntl.F_UNLCK)',
        ].join('\n'),
        [`${dir}/g`],
      );
      expect(probe.stderr).toBe('');
      expect(probe.stdout).toBe(`True 100 10 ${pid}\nTrue\n`);
      expect(fs.ops.get('getlk')).toBe(2);
    } finally {
      holder.end();
      await holder.exited;
    }

    // Two open file descriptions in ONE process: OFD locks conflict (POSIX locks of one process would not).
    const ofd = await runPython(
      [
        'import errno, fcntl, os, struct, sys',
        'F_OFD_SETLK = 37',
        "lk = struct.pack('hhqqi', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)",
        'a = os.open(sys.argv[1], os.O_RDWR)',
        'b = os.open(sys.argv[1], os.O_RDWR)',
        'fcntl.fcntl(a, F_OFD_SETLK, lk)',
        'try:',
        '    fcntl.fcntl(b, F_OFD_SETLK, lk); print("b got it")',
        'except OSError as e:',
        '    print("b blocked", errno.errorcode[e.errno])',
        'os.close(a)',
        // The kernel sends the RELEASE that drops a's lock asynchronously
        // after close(2) returns: retry for a bounded while.
        'import time',
        'for i in range(400):',
        '    try:',
        '        fcntl.fcntl(b, F_OFD_SETLK, lk); print("b got it after a closed"); break',
        '    except BlockingIOError:',
        '        time.sleep(0.005)',
      ].join('\n'),
      [`${dir}/g`],
    );
    expect(ofd.stderr).toBe('');
    expect(ofd.stdout).toBe('b blocked EAGAIN\nb got it after a closed\n');
  });
  it('flock(2) is forwarded when the flockLocks capability is requested', async () => {
    const { dir, fs, m } = await mounts.mount({ mount: { capabilities: { flockLocks: true } }, seed: (f) => f.writeFile('fl', '') });
    expect(m.negotiated.capabilities.has('flockLocks')).toBe(true);
    const holder = spawnInteractive('python3', [
      '-u',
      '-c',
      [
        'import fcntl, os, sys',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        'fcntl.flock(fd, fcntl.LOCK_EX)',
        "print('held', flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
      `${dir}/fl`,
    ]);
    try {
      await holder.waitForLine('held');
      const other = await runPython(
        'import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\ntry:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print("got")\nexcept BlockingIOError:\n    print("busy")',
        [`${dir}/fl`],
      );
      expect(other.stdout).toBe('busy\n');
      expect(fs.locks.held(fs.resolve('fl').ino)).toHaveLength(1);
    } finally {
      holder.end();
      await holder.exited;
    }
    // The holder's exit released the file, and its flock with it (FUSE_RELEASE_FLOCK_UNLOCK).
    await waitUntil(() => fs.locks.held(fs.resolve('fl').ino).length === 0, 'flock release on close');
  });
});
