import { copyFile, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatChecksum } from '../../src/ltx/index.js';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { checkConsistency, cliChecksum, readChain, runCli } from './chain.js';
import { buildHotJournal } from './journal-writer.js';

afterEach(destroyAllNodes);

async function sql(node: LiteFSNode, db: string, text: string): Promise<string> {
  const r = await runSqlite3(node.path(db), text, { busyTimeoutMs: 5000 });
  if (r.code !== 0 || r.stderr !== '') throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout;
}

async function seed(node: LiteFSNode, db: string): Promise<void> {
  await sql(
    node,
    db,
    'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(1500) FROM generate_series(1, 60);',
  );
}

/** Overwrites `len` bytes at `offset` of a file (daemon stopped). */
async function scribble(file: string, offset: number, len: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(Buffer.alloc(len, 0xa5), 0, len, offset);
  } finally {
    await fh.close();
  }
}

function logMessages(node: LiteFSNode): string[] {
  return node.logLines().map((l) => String(l.msg));
}

describe('startup recovery', () => {
  it('rolls back the hot journal of a transaction in flight when the daemon was killed', async () => {
    const node = await startNode();
    await seed(node, 'a.db');
    const before = await checkConsistency(node, 'a.db');
    const sumBefore = await sql(node, 'a.db', 'SELECT sum(length(v)), count(*) FROM t;');
    const writer = spawnPythonSqlite(
      node.path('a.db'),
      [
        "db.execute('PRAGMA cache_size=2')",
        "db.execute('BEGIN')",
        "db.execute('UPDATE t SET v = randomblob(2500)')",
        "db.execute('INSERT INTO t SELECT id + 1000, v FROM t')",
        "print('spilled', flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
    );
    try {
      await writer.waitForLine('spilled');
      await node.kill();
    } finally {
      writer.kill();
      await writer.exited;
    }
    // The daemon died with new pages in the database file and a hot journal beside it.
    expect((await readFile(node.journalFile('a.db'))).subarray(0, 8).toString('hex')).toBe('d9d505f920a163d7');
    expect(await cliChecksum(node.databaseFile('a.db'))).not.toBe(before.postApply);

    await node.start();
    expect(logMessages(node)).toContain('rolled back hot journal');
    await expect(stat(node.journalFile('a.db'))).rejects.toThrow(/ENOENT/);
    const after = await checkConsistency(node, 'a.db');
    expect([after.txid, after.postApply]).toEqual([before.txid, before.postApply]);
    expect(await sql(node, 'a.db', 'SELECT sum(length(v)), count(*) FROM t;')).toBe(sumBefore);
    expect(await sql(node, 'a.db', 'PRAGMA integrity_check;')).toBe('ok\n');
  });

  it('restores reused free pages (which SQLite does not journal) of a transaction in flight when the daemon was killed', async () => {
    const node = await startNode();
    // Free pages: rows deleted, pages left on the freelist. A later commit
    // makes sure the newest LTX file does not hold them, so re-applying it
    // cannot repair them.
    await sql(
      node,
      'f.db',
      'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(3000) FROM generate_series(1, 200); DELETE FROM t WHERE id > 100; UPDATE t SET v = randomblob(3000) WHERE id = 1;',
    );
    const before = await checkConsistency(node, 'f.db');
    const bytesBefore = await readFile(node.databaseFile('f.db'));
    const writer = spawnPythonSqlite(
      node.path('f.db'),
      [
        "db.execute('PRAGMA cache_size=2')",
        "db.execute('BEGIN')",
        "db.execute('INSERT INTO t SELECT id + 1000, randomblob(3000) FROM t')",
        "print('spilled', flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
    );
    try {
      await writer.waitForLine('spilled');
      await node.kill();
    } finally {
      writer.kill();
      await writer.exited;
    }
    await node.start();
    const msgs = logMessages(node);
    expect(msgs).toContain('rolled back hot journal');
    expect(msgs).toContain('restored committed pages from the undo log');
    const after = await checkConsistency(node, 'f.db');
    expect([after.txid, after.postApply]).toEqual([before.txid, before.postApply]);
    expect(Buffer.compare(await readFile(node.databaseFile('f.db')), bytesBefore)).toBe(0);
    expect(await sql(node, 'f.db', 'PRAGMA integrity_check; SELECT count(*) FROM t;')).toBe('ok\n100\n');
    // The undo log is gone once recovery is done.
    await expect(stat(path.join(node.dbDir('f.db'), 'undo'))).rejects.toThrow(/ENOENT/);
  });

  it('re-applies the newest LTX when the crash fell between the LTX file and the journal finalization', async () => {
    const node = await startNode();
    await seed(node, 'b.db');
    await node.stop();
    const pre = await readFile(node.databaseFile('b.db'));
    await node.start();
    // The transaction that "crashes": it commits (LTX written), and we then
    // recreate what a crash right before the journal unlink leaves behind.
    await sql(
      node,
      'b.db',
      'BEGIN; UPDATE t SET v = randomblob(1500) WHERE id <= 20; INSERT INTO t SELECT value + 100, randomblob(1500) FROM generate_series(1, 30); COMMIT;',
    );
    const committed = await checkConsistency(node, 'b.db');
    const expected = await sql(node, 'b.db', 'SELECT count(*), sum(length(v)), max(id) FROM t;');
    await node.stop();
    const post = await readFile(node.databaseFile('b.db'));
    const journal = buildHotJournal(pre, post, 4096);
    expect(journal.length).toBeGreaterThan(512 + 4096);
    await writeFile(node.journalFile('b.db'), journal);

    await node.start();
    const msgs = logMessages(node);
    expect(msgs).toContain('rolled back hot journal');
    expect(msgs).toContain('re-applied the newest LTX file');
    const after = await checkConsistency(node, 'b.db');
    expect([after.txid, after.postApply]).toEqual([committed.txid, committed.postApply]);
    expect(await sql(node, 'b.db', 'SELECT count(*), sum(length(v)), max(id) FROM t;')).toBe(expected);
    expect(await sql(node, 'b.db', 'PRAGMA integrity_check;')).toBe('ok\n');
    expect(Buffer.compare(await readFile(node.databaseFile('b.db')), post)).toBe(0);
  });

  it('repairs torn pages of the last transaction by re-applying its LTX file', async () => {
    const node = await startNode();
    await seed(node, 'c.db');
    await sql(node, 'c.db', 'UPDATE t SET v = randomblob(1500) WHERE id = 7;');
    const last = await checkConsistency(node, 'c.db');
    await node.stop();
    const good = await readFile(node.databaseFile('c.db'));
    const lastPages = last.chain.at(-1)!.pgnos;
    const torn = lastPages.find((p) => p > 1)!;
    await scribble(node.databaseFile('c.db'), (torn - 1) * 4096 + 2000, 1000);

    await node.start();
    expect(logMessages(node)).toContain('re-applied the newest LTX file');
    expect(Buffer.compare(await readFile(node.databaseFile('c.db')), good)).toBe(0);
    expect((await checkConsistency(node, 'c.db')).txid).toBe(last.txid);
  });

  it('refuses to start on a checksum mismatch, naming the database and both checksums; both documented ways out work', async () => {
    const node = await startNode();
    await seed(node, 'd.db');
    await sql(node, 'd.db', 'CREATE TABLE other(x); INSERT INTO other VALUES (1);');
    await sql(node, 'd.db', 'UPDATE other SET x = 2;');
    const last = await checkConsistency(node, 'd.db');
    await node.stop();
    const good = await readFile(node.databaseFile('d.db'));
    // Corrupt a page the last transaction did not write: re-applying it cannot help.
    const untouched = [...Array(last.chain.at(-1)!.header.commit).keys()]
      .map((i) => i + 1)
      .find((p) => p > 2 && !last.chain.at(-1)!.pgnos.includes(p))!;
    await scribble(node.databaseFile('d.db'), (untouched - 1) * 4096 + 3000, 64);
    const actual = await cliChecksum(node.databaseFile('d.db'));

    const failed = await node.startExpectingFailure();
    expect(failed.exit.code).toBe(1);
    const message = failed.stderr.split('\n').find((l) => l.startsWith('litefs mount:'))!;
    expect(message).toContain('d.db');
    expect(message).toContain(formatChecksum(actual));
    expect(message).toContain(formatChecksum(last.postApply));
    expect(message).toContain('ERR_STORE_CHECKSUM_MISMATCH');
    expect(message).toMatch(/To recover/);
    // No mount was left behind.
    await expect(readdir(node.mountDir)).resolves.toEqual([]);

    // Way out 1: rebuild the file from its LTX history (replay onto an empty file).
    const rebuilt = path.join(node.root, 'rebuilt.db');
    await writeFile(rebuilt, '');
    const files = (await readChain(node.ltxDir('d.db'))).map((c) => c.path);
    const r = await runCli(['ltx', 'apply', ...files, '--db', rebuilt]);
    expect(r.stderr).toBe('');
    expect(Buffer.compare(await readFile(rebuilt), good)).toBe(0);
    await copyFile(rebuilt, node.databaseFile('d.db'));
    await node.start();
    expect((await checkConsistency(node, 'd.db')).postApply).toBe(last.postApply);

    // Way out 2: accept the file as it is by moving the LTX directory aside;
    // the next write starts a new history with a snapshot.
    await node.stop();
    await scribble(node.databaseFile('d.db'), (untouched - 1) * 4096 + 3000, 64);
    expect((await node.startExpectingFailure()).exit.code).toBe(1);
    await rename(node.ltxDir('d.db'), path.join(node.root, 'ltx-aside'));
    await node.start();
    await sql(node, 'd.db', 'INSERT INTO other VALUES (3);');
    const fresh = await checkConsistency(node, 'd.db');
    expect(fresh.chain.map((c) => c.name)).toEqual(['0000000000000001-0000000000000001.ltx']);
  });

  it('drops half-written LTX files and refuses a corrupt newest LTX file, naming it', async () => {
    const node = await startNode();
    await seed(node, 'e.db');
    await sql(node, 'e.db', 'DELETE FROM t WHERE id > 30;');
    const last = await checkConsistency(node, 'e.db');
    await node.stop();
    const tmp = path.join(node.ltxDir('e.db'), '0000000000000003-0000000000000003.ltx.tmp');
    await writeFile(tmp, 'half an LTX file');
    await node.start();
    await expect(stat(tmp)).rejects.toThrow(/ENOENT/);
    expect((await checkConsistency(node, 'e.db')).txid).toBe(last.txid);
    await node.stop();

    const newest = last.chain.at(-1)!.path;
    const size = (await stat(newest)).size;
    await scribble(newest, size - 20, 4);
    const failed = await node.startExpectingFailure();
    expect(failed.exit.code).toBe(1);
    expect(failed.stderr).toContain('ERR_STORE_CORRUPT_LTX');
    expect(failed.stderr).toContain(path.basename(newest));
  });

  it('recovers every database of the mount independently', async () => {
    const node = await startNode();
    for (const db of ['m1.db', 'm2.db', 'm3.db']) await seed(node, db);
    await sql(node, 'm2.db', 'DELETE FROM t WHERE id % 2 = 0;');
    const before = await Promise.all(['m1.db', 'm2.db', 'm3.db'].map((db) => checkConsistency(node, db)));
    await node.kill();
    await node.start();
    const after = await Promise.all(['m1.db', 'm2.db', 'm3.db'].map((db) => checkConsistency(node, db)));
    expect(after.map((a) => a.postApply)).toEqual(before.map((b) => b.postApply));
    expect(await sql(node, 'm2.db', 'SELECT count(*) FROM t;')).toBe('30\n');
  });
});
