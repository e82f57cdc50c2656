import { afterEach, describe, expect, it } from 'vitest';
import { runBetterSqlite, runPythonSqlite, runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { MemfsMounts } from './fixture.js';

function inserts(n: number, from = 0): string {
  let sql = '';
  for (let i = from; i < from + n; i++) sql += `INSERT INTO t(id, v) VALUES (${i}, 'row-${i}-${'x'.repeat(40)}');\n`;
  return sql;
}

const mounts = new MemfsMounts();
afterEach(() => mounts.unmountAll());

describe('SQLite through the mount', () => {
  it('sqlite3 CLI: 1,000 single-row transactions (rollback journal), integrity_check ok', async () => {
    const { dir, fs } = await mounts.mount();
    const db = `${dir}/test.db`;
    const r = await runSqlite3(db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n${inserts(1000)}`, { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const check = await runSqlite3(db, 'PRAGMA integrity_check; SELECT count(*), sum(id) FROM t;');
    expect(check.stdout).toBe('ok\n1000|499500\n');
    // Every commit created and deleted the journal, and took locks through us.
    expect(fs.ops.get('unlink') ?? 0).toBeGreaterThanOrEqual(1000);
    expect(fs.ops.get('setlk') ?? 0).toBeGreaterThan(1000);
    expect(fs.content('test.db').subarray(0, 16).toString()).toBe('SQLite format 3\u0000');
  });

  it('WAL mode works (shared mmap of -shm) and other clients read it', async () => {
    const { dir } = await mounts.mount();
    const db = `${dir}/wal.db`;
    const w = await runSqlite3(db, `PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n${inserts(200)}`, {
      timeoutMs: 60_000,
    });
    expect(w.stdout).toBe('wal\n');
    expect(w.code).toBe(0);
    const py = await runPythonSqlite(
      db,
      "print(db.execute('PRAGMA journal_mode').fetchone()[0], db.execute('SELECT count(*) FROM t').fetchone()[0])",
    );
    expect(py.stderr).toBe('');
    expect(py.stdout).toBe('wal 200\n');
    const bs = await runBetterSqlite(
      db,
      "console.log(db.prepare('SELECT count(*) AS n FROM t').get().n, db.pragma('integrity_check', { simple: true }));",
    );
    expect(bs.stderr).toBe('');
    expect(bs.stdout).toBe('200 ok\n');
  });

  it('a writer holding BEGIN EXCLUSIVE makes other processes get "database is locked" until it commits', async () => {
    const { dir, fs } = await mounts.mount();
    const db = `${dir}/locks.db`;
    expect((await runSqlite3(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');")).code).toBe(0);

    const holder = spawnPythonSqlite(
      db,
      [
        "db.execute('BEGIN EXCLUSIVE')",
        'db.execute("INSERT INTO t VALUES (2, \'b\')")',
        "print('locked', flush=True)",
        'sys.stdin.readline()',
        "db.execute('COMMIT')",
        "print('released', flush=True)",
      ].join('\n'),
    );
    try {
      await holder.waitForLine('locked');
      const lockedCli = await runSqlite3(db, 'SELECT count(*) FROM t;', { busyTimeoutMs: 0 });
      expect(lockedCli.code).not.toBe(0);
      expect(lockedCli.stderr).toMatch(/database is locked/);
      const lockedPy = await runPythonSqlite(db, "db.execute('SELECT count(*) FROM t')");
      expect(lockedPy.stderr).toMatch(/database is locked/);
      const lockedNode = await runBetterSqlite(db, "db.prepare('SELECT count(*) FROM t').get();");
      expect(lockedNode.stderr).toMatch(/SQLITE_BUSY|database is locked/);
      expect(fs.locks.held(fs.resolve('locks.db').ino).some((l) => l.type === 'write')).toBe(true);

      holder.writeLine('go');
      await holder.waitForLine('released');
    } finally {
      holder.end();
      const done = await holder.exited;
      expect(done.code).toBe(0);
    }
    const after = await runSqlite3(db, 'SELECT count(*) FROM t;');
    expect(after.stdout).toBe('2\n');
    // Closing the last connection released everything (FLUSH drops the owner's locks).
    expect(fs.locks.held(fs.resolve('locks.db').ino)).toEqual([]);
  });

  it('two concurrent writers with busy timeouts both finish, rows intact', async () => {
    const { dir } = await mounts.mount();
    const db = `${dir}/busy.db`;
    expect((await runSqlite3(db, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);')).code).toBe(0);
    const [a, b] = await Promise.all([
      runSqlite3(db, inserts(150, 0), { busyTimeoutMs: 20_000, timeoutMs: 90_000 }),
      runPythonSqlite(db, `for i in range(1000, 1150):\n    db.execute('INSERT INTO t VALUES (?, ?)', (i, 'py'))`, {
        busyTimeoutMs: 20_000,
        timeoutMs: 90_000,
      }),
    ]);
    expect(a.stderr).toBe('');
    expect(b.stderr).toBe('');
    const check = await runSqlite3(db, 'PRAGMA integrity_check; SELECT count(*) FROM t;');
    expect(check.stdout).toBe('ok\n300\n');
  });
});
