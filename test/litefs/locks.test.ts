import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runPython, runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { spawnInteractive } from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';
import { checkConsistency } from './chain.js';

afterEach(destroyAllNodes);

async function seed(node: LiteFSNode, db: string): Promise<void> {
  const r = await runSqlite3(
    node.path(db),
    'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(2000) FROM generate_series(1, 100);',
  );
  expect(r.code).toBe(0);
}

/** A python process that holds a SQLite transaction open until told to finish. */
function holder(node: LiteFSNode, db: string, begin: string) {
  return spawnPythonSqlite(
    node.path(db),
    [
      `db.execute('${begin}')`,
      "db.execute('INSERT INTO t(v) VALUES (NULL)')",
      "print('holding', flush=True)",
      'if sys.stdin.readline().strip() == "commit":',
      "    db.execute('COMMIT')",
      "    print('committed', flush=True)",
    ].join('\n'),
    { busyTimeoutMs: 0 },
  );
}

// struct flock on Linux x86-64/arm64: short type, short whence, off_t start, off_t len, pid_t pid (+pad).
const FCNTL_PRELUDE = `
import fcntl, os, struct, sys, errno
FMT = 'hhqqi4x'
def lk(fd, cmd, typ, start, length):
    return struct.unpack(FMT, fcntl.fcntl(fd, cmd, struct.pack(FMT, typ, 0, start, length, 0)))
def attempt(label, fn):
    try:
        r = fn()
        print(f'{label}: ok {r[0] if r else ""}'.strip(), flush=True)
    except OSError as e:
        print(f'{label}: {errno.errorcode.get(e.errno, e.errno)}', flush=True)
fd = os.open(sys.argv[1], os.O_RDWR)
PENDING, RESERVED, SHARED = 0x40000000, 0x40000001, 0x40000002
`;

describe("POSIX lock emulation of SQLite's locks", () => {
  it('RESERVED blocks a second writer but not readers; EXCLUSIVE blocks readers; commit releases both', async () => {
    const node = await startNode();
    await seed(node, 'l.db');
    const w = holder(node, 'l.db', 'BEGIN IMMEDIATE');
    try {
      await w.waitForLine('holding');
      const writer2 = await runSqlite3(node.path('l.db'), 'BEGIN IMMEDIATE; INSERT INTO t VALUES (2000, NULL); COMMIT;');
      expect(writer2.stderr).toMatch(/database is locked/);
      const reader = await runSqlite3(node.path('l.db'), 'SELECT count(*) FROM t;');
      expect(reader.stderr).toBe('');
      expect(reader.stdout).toBe('100\n');
      w.writeLine('commit');
      await w.waitForLine('committed');
    } finally {
      w.end();
      await w.exited;
    }
    const x = holder(node, 'l.db', 'BEGIN EXCLUSIVE');
    try {
      await x.waitForLine('holding');
      const reader = await runSqlite3(node.path('l.db'), 'SELECT count(*) FROM t;');
      expect(reader.stderr).toMatch(/database is locked/);
    } finally {
      x.end(); // exits without committing: SQLite rolls back on close
      await x.exited;
    }
    const after = await runSqlite3(node.path('l.db'), 'SELECT count(*) FROM t; PRAGMA integrity_check;');
    expect(after.stdout).toBe('101\nok\n');
    expect((await checkConsistency(node, 'l.db')).txid).toBe(3n);
  });

  it('a writer killed while holding its locks releases them (the kernel flushes its descriptors)', async () => {
    const node = await startNode();
    await seed(node, 'k.db');
    const w = holder(node, 'k.db', 'BEGIN EXCLUSIVE');
    await w.waitForLine('holding');
    w.kill();
    await w.exited;
    const r = await runSqlite3(node.path('k.db'), 'BEGIN IMMEDIATE; INSERT INTO t VALUES (5000, NULL); COMMIT; SELECT count(*) FROM t;');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('101\n');
  });

  it('locks belong to their owner: F_GETLK reports another owner, an owner converts its own lock, F_SETLK conflicts give EAGAIN', async () => {
    const node = await startNode();
    await seed(node, 'o.db');
    const a = spawnInteractive(
      'python3',
      [
        '-u',
        '-c',
        FCNTL_PRELUDE +
          [
            "attempt('a-write-shared', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, SHARED, 510))",
            "attempt('a-reserved', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, RESERVED, 1))",
            "print('held', flush=True)",
            'sys.stdin.readline()',
            // Same owner: downgrade to read, no conflict with itself.
            "attempt('a-downgrade', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_RDLCK, SHARED, 510))",
            "attempt('a-unlock-reserved', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_UNLCK, RESERVED, 1))",
            "print('downgraded', flush=True)",
            'sys.stdin.readline()',
          ].join('\n'),
        node.path('o.db'),
      ],
      { timeoutMs: 60_000 },
    );
    const b = (code: string) =>
      runPython(FCNTL_PRELUDE + code, [node.path('o.db')], { timeoutMs: 30_000 }).then((r) => {
        if (r.code !== 0) throw new Error(r.stderr);
        return r.stdout;
      });
    try {
      expect(await a.waitForLine('a-write-shared')).toBe('a-write-shared: ok 1');
      expect(await a.waitForLine('a-reserved')).toBe('a-reserved: ok 1');
      await a.waitForLine('held');
      const held = await b(
        [
          "attempt('getlk-shared', lambda: lk(fd, fcntl.F_GETLK, fcntl.F_RDLCK, SHARED, 1))",
          "attempt('setlk-shared', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_RDLCK, SHARED, 1))",
          "attempt('setlk-reserved', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, RESERVED, 1))",
          "attempt('setlk-pending', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_RDLCK, PENDING, 1))",
        ].join('\n'),
      );
      // F_GETLK answers with the conflicting lock's type (F_WRLCK = 1).
      expect(held).toBe(`getlk-shared: ok ${1}\nsetlk-shared: EAGAIN\nsetlk-reserved: EAGAIN\nsetlk-pending: ok 0\n`);
      a.writeLine('go');
      expect(await a.waitForLine('a-downgrade')).toBe('a-downgrade: ok 0');
      await a.waitForLine('downgraded');
      const shared = await b(
        [
          "attempt('getlk-shared', lambda: lk(fd, fcntl.F_GETLK, fcntl.F_RDLCK, SHARED, 1))",
          "attempt('setlk-shared', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_RDLCK, SHARED, 1))",
          "attempt('setlk-shared-write', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, SHARED, 1))",
          "attempt('setlk-reserved', lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, RESERVED, 1))",
        ].join('\n'),
      );
      // F_UNLCK = 2: no conflict for a reader now; a writer still conflicts with A's read lock.
      expect(shared).toBe('getlk-shared: ok 2\nsetlk-shared: ok 0\nsetlk-shared-write: EAGAIN\nsetlk-reserved: ok 1\n');
    } finally {
      a.end();
      await a.exited;
    }
  });

  it('F_SETLKW waits for the holder to release, then succeeds', async () => {
    const node = await startNode();
    await seed(node, 'w.db');
    const a = spawnInteractive(
      'python3',
      [
        '-u',
        '-c',
        FCNTL_PRELUDE +
          "lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, RESERVED, 1)\nprint('held', flush=True)\nsys.stdin.readline()\nos.close(fd)\nprint('closed', flush=True)\nsys.stdin.readline()",
        node.path('w.db'),
      ],
      { timeoutMs: 60_000 },
    );
    let b: ReturnType<typeof spawnInteractive> | null = null;
    try {
      await a.waitForLine('held');
      // B starts only once A holds RESERVED.
      b = spawnInteractive(
        'python3',
        [
          '-u',
          '-c',
          FCNTL_PRELUDE + "print('waiting', flush=True)\nlk(fd, fcntl.F_SETLKW, fcntl.F_WRLCK, RESERVED, 1)\nprint('acquired', flush=True)",
          node.path('w.db'),
        ],
        { timeoutMs: 60_000 },
      );
      await b.waitForLine('waiting');
      let acquired = false;
      void b.waitForLine('acquired', 30_000).then(
        () => {
          acquired = true;
        },
        () => undefined,
      );
      // Still blocked while A holds the lock (checked after B had time to ask).
      await new Promise((r) => setTimeout(r, 500));
      expect(acquired).toBe(false);
      a.writeLine('close');
      await a.waitForLine('closed');
      await waitUntil(() => acquired, 'B to acquire RESERVED after A closed its descriptor', 20_000);
    } finally {
      a.end();
      b?.kill();
      await a.exited;
      await b?.exited;
    }
  });
});

describe('kernel page cache on the database (FOPEN_KEEP_CACHE)', () => {
  it('a second process reading the whole database is served from the page cache: no READ reaches the daemon', async () => {
    const node = await startNode({ args: ['-fuse.debug', '-debug'] });
    await seed(node, 'c.db');
    const reads = (): number => node.logLines().filter((l) => l.opcode === 'READ').length;
    const scan = async (): Promise<void> => {
      const r = await runSqlite3(node.path('c.db'), 'SELECT sum(length(v)) FROM t;');
      expect(r.stdout).toBe('200000\n');
    };
    await scan();
    // Let the log drain (the daemon logs asynchronously).
    let n = -1;
    await waitUntil(
      () => {
        const m = reads();
        const stable = m === n;
        n = m;
        return stable && m >= 0;
      },
      'the debug log to settle',
      10_000,
    );
    const afterFirst = reads();
    await scan();
    await scan();
    await new Promise((r) => setTimeout(r, 300));
    expect(reads()).toBe(afterFirst);
    // Opens did reach the daemon (the scans really used the mount).
    expect(node.logLines().filter((l) => l.opcode === 'OPEN').length).toBeGreaterThanOrEqual(3);
  });
});
