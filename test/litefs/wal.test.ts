import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runPythonSqlite, runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { checkConsistency, ltxCount, runCli } from './chain.js';

afterEach(destroyAllNodes);

/*
 * WAL mode on one node, with real clients in other processes: commits are
 * captured once each with their WAL fields, rollbacks and checkpoints of
 * every kind produce nothing, long read transactions and other processes'
 * locks are left alone, and the history always replays to the database.
 */

function walPath(node: LiteFSNode, db: string): string {
  return path.join(path.dirname(node.databaseFile(db)), 'wal');
}

async function sql(node: LiteFSNode, db: string, text: string): Promise<string> {
  const r = await runSqlite3(node.path(db), text, { busyTimeoutMs: 5000, timeoutMs: 30_000 });
  expect(r.stderr, text).toBe('');
  expect(r.code, text).toBe(0);
  return r.stdout;
}

/** Every LTX file verifies (`litefs ltx verify`), and applying them all to an empty file gives the database's checksum. */
async function expectReplayable(node: LiteFSNode, db: string): Promise<void> {
  const c = await checkConsistency(node, db);
  const files = c.chain.map((e) => e.path);
  const v = await runCli(['ltx', 'verify', ...files]);
  expect(v.code, v.stderr).toBe(0);
  const target = path.join(node.root, `${db}.replayed`);
  const a = await runCli(['ltx', 'apply', ...files, '--db', target]);
  expect(a.code, a.stderr).toBe(0);
  const sum = await runCli(['ltx', 'checksum', target]);
  expect(sum.stdout.trim()).toBe(c.pos.trim().split('/')[1]);
}

describe('WAL mode on one node', () => {
  it('each WAL transaction is one LTX file with the WAL fields filled; rollbacks and empty transactions record nothing', async () => {
    const node = await startNode({ args: ['-debug'] });
    const db = 'w.db';
    const r = await runPythonSqlite(
      node.path(db),
      [
        "assert db.execute('PRAGMA journal_mode=wal').fetchone()[0] == 'wal'",
        "db.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)')",
        'for i in range(20):',
        "    db.execute('INSERT INTO t VALUES (?, randomblob(300))', (i,))",
        "db.execute('BEGIN'); db.execute('INSERT INTO t VALUES (1000, 1)'); db.execute('ROLLBACK')",
        "db.execute('PRAGMA cache_size=2'); db.execute('BEGIN')",
        "db.execute('UPDATE t SET v = randomblob(4000)')",
        "db.execute('ROLLBACK'); db.execute('PRAGMA cache_size=-2000')",
        "db.execute('BEGIN IMMEDIATE'); db.execute('COMMIT')",
        "db.execute('BEGIN')",
        "for i in range(30): db.execute('INSERT INTO t VALUES (?, randomblob(2500))', (2000 + i,))",
        "db.execute('COMMIT')",
        "print(db.execute('SELECT count(*) FROM t').fetchone()[0])",
      ].join('\n'),
      { busyTimeoutMs: 5000, timeoutMs: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('50\n');
    const c = await checkConsistency(node, db);
    // 1 switch to WAL (a rollback-journal transaction on page 1), 1 CREATE, 20 inserts, 1 multi-row insert.
    expect(c.txid).toBe(23n);
    const wal = c.chain.slice(1);
    for (const [i, e] of wal.entries()) {
      expect(e.header.walSize, e.name).toBeGreaterThan(0n);
      expect(e.header.walSalt1 !== 0 || e.header.walSalt2 !== 0, e.name).toBe(true);
      if (i > 0 && e.header.walSalt1 === wal[i - 1]!.header.walSalt1) {
        // Contiguous in the same WAL: each transaction starts where the previous one ended.
        const prev = wal[i - 1]!.header;
        expect(e.header.walOffset, e.name).toBe(prev.walOffset + prev.walSize);
      }
    }
    await expectReplayable(node, db);
    expect(await sql(node, db, 'PRAGMA integrity_check; SELECT count(*) FROM t;')).toBe('ok\n50\n');
  });

  it('checkpoints of every kind (PASSIVE, FULL, RESTART, TRUNCATE, automatic) record nothing and keep the checksum; journal_size_limit works', async () => {
    const node = await startNode();
    const db = 'ck.db';
    await sql(node, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);');
    const writer = spawnPythonSqlite(
      node.path(db),
      [
        "db.execute('PRAGMA wal_autocheckpoint=20')",
        "db.execute('PRAGMA journal_size_limit=16384')",
        'n = 0',
        'for line in sys.stdin:',
        '    cmd = line.strip()',
        "    if cmd == 'quit': break",
        "    if cmd.startswith('auto '):",
        "        db.execute('PRAGMA wal_autocheckpoint=%d' % int(cmd[5:])); print('ok auto', flush=True); continue",
        "    if cmd.startswith('ckpt '):",
        "        print('ok', db.execute('PRAGMA wal_checkpoint(%s)' % cmd[5:]).fetchone(), flush=True)",
        '    else:',
        '        for i in range(int(cmd)):',
        "            db.execute('INSERT INTO t VALUES (?, randomblob(3000))', (n,)); n += 1",
        "        print('ok', n, flush=True)",
      ].join('\n'),
      { busyTimeoutMs: 5000, timeoutMs: 120_000 },
    );
    try {
      for (const mode of ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE']) {
        writer.writeLine('15');
        await writer.waitForLine(/^ok \d+/);
        const before = await checkConsistency(node, db);
        writer.writeLine(`ckpt ${mode}`);
        const answer = await writer.waitForLine(/^ok \(/);
        // busy = 0: the checkpoint ran to completion.
        expect(answer, mode).toMatch(/^ok \(0, /);
        const after = await checkConsistency(node, db);
        expect(after.txid, mode).toBe(before.txid);
        expect(after.postApply, mode).toBe(before.postApply);
        if (mode === 'TRUNCATE') expect((await stat(walPath(node, db))).size).toBe(0);
      }
      // journal_size_limit: a WAL grown to 30 frames, checkpointed, is cut
      // back to the limit by the first commit after the restart.
      writer.writeLine('auto 0');
      await writer.waitForLine('ok auto');
      writer.writeLine('30');
      await writer.waitForLine(/^ok \d+/);
      expect((await stat(walPath(node, db))).size).toBeGreaterThan(30 * 4120);
      writer.writeLine('ckpt PASSIVE');
      expect(await writer.waitForLine(/^ok \(/)).toMatch(/^ok \(0, /);
      writer.writeLine('1');
      await writer.waitForLine(/^ok \d+/);
      expect((await stat(walPath(node, db))).size).toBe(16384);
      // 60 more single-row transactions: automatic checkpoints every 20
      // pages, the WAL restarted over and over instead of growing.
      writer.writeLine('auto 20');
      await writer.waitForLine('ok auto');
      const before = await checkConsistency(node, db);
      writer.writeLine('60');
      await writer.waitForLine(/^ok \d+/);
      const after = await checkConsistency(node, db);
      expect(after.txid).toBe(before.txid + 60n);
      const salts = new Set(after.chain.slice(-60).map((e) => e.header.walSalt1));
      expect(salts.size, 'WAL restarts after automatic checkpoints').toBeGreaterThan(1);
      expect((await stat(walPath(node, db))).size).toBeLessThanOrEqual(32 + 25 * 4120);
    } finally {
      writer.writeLine('quit');
      await writer.exited;
    }
    await expectReplayable(node, db);
    expect(await sql(node, db, 'PRAGMA integrity_check; SELECT count(*) FROM t;')).toBe('ok\n151\n');
  });

  it('a long read transaction in another process keeps its snapshot while writes and checkpoints go on, then sees them', async () => {
    const node = await startNode();
    const db = 'long.db';
    await sql(node, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 1);');
    const reader = spawnPythonSqlite(
      node.path(db),
      [
        "db.execute('BEGIN')",
        "print('n', db.execute('SELECT count(*) FROM t').fetchone()[0], flush=True)",
        'sys.stdin.readline()',
        "print('n', db.execute('SELECT count(*) FROM t').fetchone()[0], flush=True)",
        "db.execute('COMMIT')",
        "print('n', db.execute('SELECT count(*) FROM t').fetchone()[0], flush=True)",
      ].join('\n'),
      { busyTimeoutMs: 5000, timeoutMs: 60_000 },
    );
    try {
      expect(await reader.waitForLine(/^n /)).toBe('n 1');
      for (let i = 2; i <= 40; i++) await sql(node, db, `INSERT INTO t VALUES (${i}, randomblob(2000));`);
      // A checkpoint cannot pass the reader's snapshot; it copies what it may.
      expect(await sql(node, db, 'PRAGMA wal_checkpoint(PASSIVE);')).toMatch(/^0\|\d+\|\d+\n$/);
      reader.writeLine('go');
      expect(await reader.waitForLine(/^n /)).toBe('n 1');
      expect(await reader.waitForLine(/^n /)).toBe('n 40');
    } finally {
      reader.kill();
      await reader.exited;
    }
    expect((await checkConsistency(node, db)).txid).toBe(42n);
    await expectReplayable(node, db);
  });

  it("other processes' advisory locks on other byte ranges (as Prisma takes them) do not disturb commits", async () => {
    const node = await startNode();
    const db = 'adv.db';
    await sql(node, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v);');
    const holder = spawnPythonSqlite(
      node.path(db),
      [
        'import fcntl, os',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        // Exclusive locks far from SQLite's lock bytes, on the database and on a side file.
        'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 5000)',
        "print('locked', flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
      { timeoutMs: 60_000 },
    );
    try {
      await holder.waitForLine('locked');
      for (let i = 0; i < 20; i++) await sql(node, db, `INSERT INTO t VALUES (${i}, ${i});`);
      expect(await sql(node, db, 'SELECT count(*) FROM t;')).toBe('20\n');
    } finally {
      holder.kill();
      await holder.exited;
    }
    expect((await checkConsistency(node, db)).txid).toBe(22n);
  });

  it('locking_mode=EXCLUSIVE with WAL works on the primary: every commit recorded (LiteFS refused it, #426)', async () => {
    const node = await startNode();
    const db = 'excl.db';
    const r = await runPythonSqlite(
      node.path(db),
      [
        "db.execute('PRAGMA locking_mode=EXCLUSIVE')",
        "assert db.execute('PRAGMA journal_mode=wal').fetchone()[0] == 'wal'",
        "db.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)')",
        'for i in range(10):',
        "    db.execute('INSERT INTO t VALUES (?, randomblob(500))', (i,))",
        "db.execute('PRAGMA wal_checkpoint(TRUNCATE)')",
        'for i in range(10, 15):',
        "    db.execute('INSERT INTO t VALUES (?, randomblob(500))', (i,))",
        "print('done', flush=True)",
      ].join('\n'),
      { busyTimeoutMs: 5000, timeoutMs: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('done\n');
    // No -shm was ever made: the wal-index lived in the writer's memory.
    expect(await readdir(node.mountDir)).not.toContain(`${db}-shm`);
    const c = await checkConsistency(node, db);
    expect(c.txid).toBe(17n);
    await expectReplayable(node, db);
    expect(await sql(node, db, 'SELECT count(*) FROM t;')).toBe('15\n');
  });

  it('switching back to DELETE mode and again to WAL, VACUUM and a page size change attempt in WAL mode', async () => {
    const node = await startNode();
    const db = 'sw.db';
    await sql(
      node,
      db,
      'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(3000) FROM generate_series(1, 100);',
    );
    await sql(node, db, 'DELETE FROM t WHERE id > 10;');
    const big = await checkConsistency(node, db);
    // In WAL mode the page size cannot change; VACUUM still shrinks the file.
    await sql(node, db, 'PRAGMA page_size=8192; VACUUM;');
    const vac = await checkConsistency(node, db);
    expect(vac.chain.at(-1)!.header.commit).toBeLessThan(big.chain.at(-1)!.header.commit);
    expect(vac.chain.at(-1)!.header.pageSize).toBe(4096);
    expect((await sql(node, db, 'PRAGMA journal_mode=delete;')).trim()).toBe('delete');
    await sql(node, db, 'INSERT INTO t VALUES (500, 1);');
    expect(await readdir(node.mountDir)).not.toContain(`${db}-wal`);
    expect((await sql(node, db, 'PRAGMA journal_mode=wal;')).trim()).toBe('wal');
    await sql(node, db, 'INSERT INTO t VALUES (501, 1);');
    expect(await sql(node, db, 'PRAGMA integrity_check; SELECT count(*) FROM t;')).toBe('ok\n12\n');
    await expectReplayable(node, db);
    expect(await ltxCount(node.ltxDir(db))).toBe(Number((await checkConsistency(node, db)).txid));
  });

  it('journal_mode OFF and MEMORY stay refused, the log naming the database, the mode and why', async () => {
    const node = await startNode();
    const db = 'off.db';
    await sql(node, db, 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    const before = await checkConsistency(node, db);
    for (const mode of ['OFF', 'MEMORY']) {
      const r = await runSqlite3(node.path(db), `PRAGMA journal_mode=${mode}; INSERT INTO t VALUES (2);`, { busyTimeoutMs: 2000 });
      expect(r.code, mode).not.toBe(0);
    }
    const after = await checkConsistency(node, db);
    expect(after.txid).toBe(before.txid);
    const refused = node.logLines().filter((l) => typeof l['msg'] === 'string' && /outside a journaled transaction/.test(l['msg']));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ db });
    expect(String(refused[0]!['msg'])).toMatch(/journal_mode OFF and MEMORY/);
    expect(await sql(node, db, 'SELECT count(*) FROM t;')).toBe('1\n');
  });
});
