import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode } from '../helpers/daemon.js';
import { runPythonSqlite, runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { waitUntil } from '../helpers/wait.js';
import { checkConsistency, ltxCount, readChain } from './chain.js';
import { JOURNAL_MODES, openClient } from './clients.js';

afterEach(destroyAllNodes);

/** Page numbers whose bytes differ between two copies of a database file. */
function differingPages(a: Buffer, b: Buffer, pageSize: number): number[] {
  const out: number[] = [];
  const n = Math.max(a.length, b.length) / pageSize;
  for (let i = 0; i < n; i++) {
    const pa = a.subarray(i * pageSize, (i + 1) * pageSize);
    const pb = b.subarray(i * pageSize, (i + 1) * pageSize);
    if (!pa.equals(pb)) out.push(i + 1);
  }
  return out;
}

describe('commit detection', () => {
  it('the first transaction is TXID 1, a snapshot of every page with no pre-apply checksum', async () => {
    const node = await startNode();
    const r = await runSqlite3(
      node.path('first.db'),
      'PRAGMA page_size=1024; BEGIN; CREATE TABLE t(x); INSERT INTO t SELECT randomblob(900) FROM generate_series(1, 30); COMMIT;',
    );
    expect(r.stderr).toBe('');
    const { chain } = await checkConsistency(node, 'first.db');
    expect(chain).toHaveLength(1);
    const h = chain[0]!.header;
    expect([h.minTXID, h.maxTXID, h.preApplyChecksum, h.pageSize]).toEqual([1n, 1n, 0n, 1024]);
    expect(chain[0]!.pgnos).toEqual(Array.from({ length: h.commit }, (_, i) => i + 1));
    expect(h.commit).toBe((await stat(node.databaseFile('first.db'))).size / 1024);
  });

  it('a first transaction rolled back after its journal was synced leaves no LTX and no journal', async () => {
    const node = await startNode();
    const db = node.path('rb.db');
    // A tiny cache makes SQLite sync the journal and write pages to the
    // (new, empty) database before the ROLLBACK, which truncates it to 0.
    const r = await runPythonSqlite(
      db,
      [
        "db.execute('PRAGMA cache_size=2')",
        "db.execute('BEGIN')",
        "db.execute('CREATE TABLE t(x)')",
        "for i in range(200): db.execute('INSERT INTO t VALUES (randomblob(3000))')",
        "db.execute('ROLLBACK')",
        "print('rolled back')",
      ].join('\n'),
      { busyTimeoutMs: 5000 },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('rolled back\n');
    // A file that never became a database leaves nothing behind, once closed.
    await waitUntil(async () => !(await exists(path.dirname(node.journalFile('rb.db')))), 'rb.db to be removed');
    expect(await readdir(node.mountDir)).not.toContain('rb.db');
    expect(node.runLog()).not.toMatch(/"level":"(error|warn)"/);
    // The database is still usable and its first real commit is TXID 1.
    const w = await runSqlite3(db, 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    expect(w.stderr).toBe('');
    expect((await checkConsistency(node, 'rb.db')).txid).toBe(2n);
  });

  it('a synced rollback that reused free pages records exactly the pages whose bytes changed, and nothing else', async () => {
    const node = await startNode();
    const db = node.path('free.db');
    // Free pages: rows deleted, pages left on the freelist (no auto-vacuum).
    let r = await runSqlite3(
      db,
      'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(3000) FROM generate_series(1, 200); DELETE FROM t WHERE id > 100;',
    );
    expect(r.stderr).toBe('');
    const before = await checkConsistency(node, 'free.db');
    const bytesBefore = await readFile(node.databaseFile('free.db'));
    // SQLite does not journal a free page it reuses, so its rollback
    // restores every page but those: their bytes really changed.
    r = await runSqlite3(
      db,
      'PRAGMA cache_size=2; BEGIN; INSERT INTO t SELECT value + 1000, randomblob(3000) FROM generate_series(1, 80); UPDATE t SET v = randomblob(3000) WHERE id <= 100; ROLLBACK;',
    );
    expect(r.stderr).toBe('');
    const after = await checkConsistency(node, 'free.db');
    const bytesAfter = await readFile(node.databaseFile('free.db'));
    const changed = differingPages(bytesBefore, bytesAfter, 4096);
    // Fewer pages than the transaction touched (it rewrote ~250), all of
    // them former free pages past the live rows' pages.
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.length).toBeLessThan(120);
    expect(after.txid).toBe(before.txid + 1n);
    expect(after.chain.at(-1)!.pgnos).toEqual(changed);
    r = await runSqlite3(db, 'PRAGMA integrity_check; SELECT count(*), max(id) FROM t;');
    expect(r.stdout).toBe('ok\n100|100\n');
  });

  for (const mode of JOURNAL_MODES) {
    it(`${mode} with synchronous=OFF (journal magic written at once): commits counted, rollbacks and empty transactions emit nothing`, async () => {
      const node = await startNode();
      const client = openClient('python', node.path('off.db'));
      try {
        await client.setMode(mode, 'OFF');
        await client.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
        // WAL mode: switching the empty database to WAL was a transaction too.
        const base = (await checkConsistency(node, 'off.db')).txid - 1n;
        for (let i = 1; i <= 5; i++) {
          await client.exec(`INSERT INTO t VALUES (${i}, randomblob(5000))`);
          await client.exec(`BEGIN; INSERT INTO t VALUES (${i + 100}, randomblob(5000)); ROLLBACK;`);
          await client.exec('BEGIN IMMEDIATE; COMMIT;');
          await client.exec('BEGIN; SELECT count(*) FROM t; COMMIT;');
          expect((await checkConsistency(node, 'off.db')).txid).toBe(base + BigInt(1 + i));
        }
        expect(await client.query('SELECT count(*) FROM t')).toEqual([['5']]);
      } finally {
        await client.close();
      }
    });
  }

  it('PERSIST with journal_size_limit: the journal is trimmed after each commit and no commit reports an error', async () => {
    const node = await startNode();
    const client = openClient('python', node.path('limit.db'));
    try {
      await client.setMode('persist');
      await client.exec('PRAGMA journal_size_limit=8192');
      await client.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      for (let i = 0; i < 5; i++) {
        // Each transaction rewrites ~10 pages: the journal grows past the limit.
        await client.exec(
          `BEGIN; WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 10) INSERT INTO t SELECT value + ${i * 100}, randomblob(3500) FROM s; UPDATE t SET v = randomblob(3500) WHERE id < ${i * 100}; COMMIT;`,
        );
        expect((await checkConsistency(node, 'limit.db')).txid).toBe(BigInt(2 + i));
        expect((await stat(node.journalFile('limit.db'))).size).toBeLessThanOrEqual(8192);
      }
      expect(await client.query('SELECT count(*) FROM t')).toEqual([['50']]);
    } finally {
      await client.close();
    }
  });

  it('locking_mode=EXCLUSIVE (journal header zeroed instead of deleted) commits once per transaction', async () => {
    const node = await startNode();
    const client = openClient('better-sqlite3', node.path('excl.db'));
    try {
      await client.setMode('delete');
      await client.exec('PRAGMA locking_mode=EXCLUSIVE');
      await client.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      for (let i = 1; i <= 4; i++) {
        await client.exec(`INSERT INTO t VALUES (${i}, 'x')`);
        expect((await checkConsistency(node, 'excl.db')).txid).toBe(BigInt(1 + i));
      }
    } finally {
      await client.close();
    }
    const r = await runSqlite3(node.path('excl.db'), 'PRAGMA integrity_check; SELECT count(*) FROM t;');
    expect(r.stdout).toBe('ok\n4\n');
    expect((await checkConsistency(node, 'excl.db')).txid).toBe(5n);
  });

  for (const mode of JOURNAL_MODES) {
    it(`${mode}: a client killed mid-transaction leaves a hot journal; the next client rolls it back through the mount and no LTX is emitted`, async () => {
      const node = await startNode();
      const db = node.path('hot.db');
      const r = await runSqlite3(
        db,
        `PRAGMA journal_mode=${mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(2000) FROM generate_series(1, 100);`,
      );
      expect(r.code).toBe(0);
      const before = await checkConsistency(node, 'hot.db');
      const writer = spawnPythonSqlite(
        db,
        [
          `db.execute('PRAGMA journal_mode=${mode}')`,
          "db.execute('PRAGMA cache_size=2')",
          "db.execute('BEGIN')",
          "db.execute('UPDATE t SET v = randomblob(2500)')",
          "print('spilled', flush=True)",
          'sys.stdin.readline()',
        ].join('\n'),
        { busyTimeoutMs: 5000 },
      );
      try {
        await writer.waitForLine('spilled');
        if (mode === 'wal') {
          // Uncommitted frames in the WAL: no commit frame, so no transaction.
          expect((await stat(path.join(path.dirname(node.journalFile('hot.db')), 'wal'))).size).toBeGreaterThan(32 + 50 * 4120);
        } else {
          // The journal is hot: synced with its magic, pages already in the database.
          const head = await readFile(node.journalFile('hot.db'));
          expect(head.subarray(0, 8).toString('hex')).toBe('d9d505f920a163d7');
        }
      } finally {
        writer.kill();
        await writer.exited;
      }
      const check = await runSqlite3(db, 'PRAGMA integrity_check; SELECT count(*), sum(length(v)) FROM t;', { busyTimeoutMs: 5000 });
      expect(check.stderr).toBe('');
      expect(check.stdout).toBe('ok\n100|200000\n');
      const after = await checkConsistency(node, 'hot.db');
      expect(after.txid).toBe(before.txid);
      expect(after.postApply).toBe(before.postApply);
    });
  }

  for (const mode of JOURNAL_MODES) {
    it(`${mode}: VACUUM (file cut after the journal is finalized) and auto-vacuum shrink the database and its LTX commit size`, async () => {
      const node = await startNode();
      const db = node.path('vac.db');
      const client = openClient('sqlite3', db);
      await client.setMode(mode);
      await client.exec('PRAGMA auto_vacuum=NONE; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      await client.exec('INSERT INTO t SELECT value, randomblob(3000) FROM generate_series(1, 200)');
      await client.exec('DELETE FROM t WHERE id > 20');
      const big = await checkConsistency(node, 'vac.db');
      await client.exec('VACUUM');
      const small = await checkConsistency(node, 'vac.db');
      expect(small.txid).toBe(big.txid + 1n);
      expect(small.chain.at(-1)!.header.commit).toBeLessThan(big.chain.at(-1)!.header.commit / 4);
      expect((await stat(node.databaseFile('vac.db'))).size).toBe(small.chain.at(-1)!.header.commit * 4096);

      // auto_vacuum=FULL truncates inside every commit that frees pages.
      await client.exec('PRAGMA auto_vacuum=FULL; VACUUM;');
      await client.exec('INSERT INTO t SELECT value + 1000, randomblob(3000) FROM generate_series(1, 100)');
      const grown = await checkConsistency(node, 'vac.db');
      await client.exec('DELETE FROM t WHERE id > 1000');
      const shrunk = await checkConsistency(node, 'vac.db');
      expect(shrunk.txid).toBe(grown.txid + 1n);
      expect(shrunk.chain.at(-1)!.header.commit).toBeLessThan(grown.chain.at(-1)!.header.commit);
      expect(await client.query('PRAGMA integrity_check')).toEqual([['ok']]);
      expect(await client.query('SELECT count(*) FROM t')).toEqual([['20']]);
    });
  }

  it('a transaction with no writes creates no journal and no LTX', async () => {
    const node = await startNode({ args: ['-fuse.debug', '-debug'] });
    const db = node.path('nw.db');
    expect((await runSqlite3(db, 'CREATE TABLE t(x); INSERT INTO t VALUES (1);')).code).toBe(0);
    const n = await ltxCount(node.ltxDir('nw.db'));
    const creates = (): number => node.logLines().filter((l) => l.opcode === 'CREATE').length;
    const c0 = creates();
    expect(c0).toBeGreaterThan(0);
    const r = await runPythonSqlite(
      db,
      "db.execute('BEGIN IMMEDIATE'); db.execute('SELECT * FROM t').fetchall(); db.execute('COMMIT'); db.execute('BEGIN EXCLUSIVE'); db.execute('COMMIT'); print('ok')",
    );
    expect(r.stdout).toBe('ok\n');
    expect(await ltxCount(node.ltxDir('nw.db'))).toBe(n);
    expect(creates()).toBe(c0);
    expect((await readChain(node.ltxDir('nw.db'))).length).toBe(n);
  });
});

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
