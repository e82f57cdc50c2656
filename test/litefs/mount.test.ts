import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fuseMountsAt } from '../../src/fuse/index.js';
import { destroyAllNodes, LiteFSNode, startNode } from '../helpers/daemon.js';
import { runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { checkConsistency, readChain } from './chain.js';

afterEach(destroyAllNodes);

async function sql(node: LiteFSNode, db: string, text: string): Promise<string> {
  const r = await runSqlite3(node.path(db), text, { busyTimeoutMs: 5000 });
  if (r.code !== 0 || r.stderr !== '') throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout;
}

describe('litefs mount: the daemon', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`runs in the foreground, logs structured lines, and on ${signal} unmounts and exits 0`, async () => {
      const node = await startNode();
      await sql(node, 'x.db', 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
      const exit = await node.stop(signal);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(await fuseMountsAt(node.mountDir)).toEqual([]);
      const lines = node.runLog().trim().split('\n');
      // Every line is a JSON object with a level, a time and a message.
      for (const line of lines) {
        const o = JSON.parse(line) as Record<string, unknown>;
        expect(typeof o.level).toBe('string');
        expect(typeof o.time).toBe('string');
        expect(typeof o.msg).toBe('string');
      }
      const msgs = node.logLines().map((l) => l.msg);
      expect(msgs).toEqual(expect.arrayContaining(['starting', 'mounted', 'shutting down', 'stopped']));
      expect(node.logLines().find((l) => l.msg === 'shutting down')!.signal).toBe(signal);
      // What was committed is there after a restart.
      await node.start();
      expect(await sql(node, 'x.db', 'SELECT * FROM t;')).toBe('1\n');
    });
  }

  it('shuts down while a client still holds a database open; the client gets an I/O error, not a hang', async () => {
    const node = await startNode();
    await sql(node, 'busy.db', 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    const client = spawnPythonSqlite(
      node.path('busy.db'),
      [
        "print(db.execute('SELECT x FROM t').fetchone()[0], flush=True)",
        'sys.stdin.readline()',
        'try:',
        "    db.execute('SELECT x FROM t').fetchall()",
        "    print('read ok', flush=True)",
        'except Exception as e:',
        "    print('error', e, flush=True)",
      ].join('\n'),
    );
    try {
      await client.waitForLine('1');
      const exit = await node.stop('SIGTERM', 30_000);
      expect(exit.code).toBe(0);
      expect(await fuseMountsAt(node.mountDir)).toEqual([]);
      client.writeLine('go');
      expect(await client.waitForLine(/^(error|read ok)/)).toMatch(/^error/);
    } finally {
      client.kill();
      await client.exited;
    }
  });

  const conflicts: Array<[string, (root: string) => { data: string; mount: string }]> = [
    ['equal to the data dir', (root) => ({ data: path.join(root, 'same'), mount: path.join(root, 'same') })],
    ['inside the data dir', (root) => ({ data: path.join(root, 'data'), mount: path.join(root, 'data', 'mnt') })],
    ['containing the data dir', (root) => ({ data: path.join(root, 'mnt', 'data'), mount: path.join(root, 'mnt') })],
  ];
  for (const [what, dirs] of conflicts) {
    it(`refuses a mount dir ${what}`, async () => {
      let chosen: { data: string; mount: string } | null = null;
      const node = await LiteFSNode.create({
        configText: ({ dataDir }) => {
          chosen = dirs(path.dirname(dataDir));
          return `data:\n  dir: ${JSON.stringify(chosen.data)}\nfuse:\n  dir: ${JSON.stringify(chosen.mount)}\nlease:\n  type: static\n  candidate: true\n  advertise-url: "http://127.0.0.1:20202"\n`;
        },
      });
      const { exit, stderr } = await node.startExpectingFailure();
      expect(exit.code).not.toBe(0);
      expect(stderr).toMatch(/fuse\.dir|data\.dir/);
      expect(stderr).toMatch(/inside|same|equal/);
      expect(await fuseMountsAt(chosen!.mount)).toEqual([]);
    });
  }
});

describe('litefs mount: layout and mount contents', () => {
  it('keeps dbs/<name>/{database,journal,ltx/} for several databases and shows a flat root', async () => {
    const node = await startNode();
    await sql(node, 'one.db', 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    await sql(node, 'two.db', 'PRAGMA journal_mode=truncate; CREATE TABLE t(x); INSERT INTO t VALUES (2);');
    await sql(node, 'three', 'PRAGMA journal_mode=persist; CREATE TABLE t(x); INSERT INTO t VALUES (3);');

    expect((await readdir(path.join(node.dataDir, 'dbs'))).sort()).toEqual(['one.db', 'three', 'two.db']);
    // `undo` (litefs-ts only) holds the committed bytes of pages a
    // transaction overwrites, for crash recovery (src/store/undo.ts).
    // DELETE mode: the real journal stays, emptied, for reuse (not in the mount).
    expect((await readdir(node.dbDir('one.db'))).sort()).toEqual(['database', 'journal', 'ltx', 'undo']);
    expect((await stat(node.journalFile('one.db'))).size).toBe(0);
    expect((await readdir(node.dbDir('two.db'))).sort()).toEqual(['database', 'journal', 'ltx', 'undo']);
    expect((await readdir(node.dbDir('three'))).sort()).toEqual(['database', 'journal', 'ltx', 'undo']);
    expect((await stat(node.journalFile('two.db'))).size).toBe(0);
    for (const db of ['one.db', 'two.db', 'three']) {
      expect((await readChain(node.ltxDir(db))).map((c) => c.name)).toEqual([
        '0000000000000001-0000000000000001.ltx',
        '0000000000000002-0000000000000002.ltx',
      ]);
    }

    const listing = (await readdir(node.mountDir)).sort();
    expect(listing).toEqual([
      '.lag',
      'one.db',
      'one.db-pos',
      'three',
      'three-journal',
      'three-pos',
      'two.db',
      'two.db-journal',
      'two.db-pos',
    ]);
    // .primary exists only on a replica connected to a primary.
    await expect(stat(node.path('.primary'))).rejects.toThrow(/ENOENT/);
    expect(await readFile(node.path('.lag'), 'utf8')).toBe('+000000000\n');

    const root = await stat(node.mountDir);
    expect(root.isDirectory()).toBe(true);
    expect(root.mode & 0o777).toBe(0o777);
    const dbStat = await stat(node.path('one.db'));
    expect(dbStat.mode & 0o777).toBe(0o666);
    expect(dbStat.size).toBe((await stat(node.databaseFile('one.db'))).size);

    const posStat = await stat(node.path('one.db-pos'));
    expect(posStat.size).toBe(34);
    const c = await checkConsistency(node, 'one.db');
    expect(c.pos).toMatch(/^0000000000000002\/[0-9a-f]{16}\n$/);
    // -pos mtime is the newest LTX file's timestamp.
    expect(BigInt(Math.round(posStat.mtimeMs))).toBe(c.chain.at(-1)!.header.timestamp);
  });

  it('unlinking a database on the primary drops it with a commit-0 LTX file and hides it', async () => {
    const node = await startNode();
    await sql(node, 'gone.db', 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    await sql(node, 'kept.db', 'CREATE TABLE t(x);');
    const r = await runSqlite3(node.path('kept.db'), '.shell rm ' + node.path('gone.db'));
    expect(r.code).toBe(0);
    const chain = await readChain(node.ltxDir('gone.db'));
    expect(chain.at(-1)!.header.commit).toBe(0);
    expect(chain.at(-1)!.header.minTXID).toBe(3n);
    expect((await readdir(node.mountDir)).sort()).toEqual(['.lag', 'kept.db', 'kept.db-pos']);
    await expect(stat(node.databaseFile('gone.db'))).rejects.toThrow(/ENOENT/);
    // The name can be used again; history continues.
    await sql(node, 'gone.db', 'CREATE TABLE u(y); INSERT INTO u VALUES (2);');
    expect(await sql(node, 'gone.db', 'SELECT * FROM u;')).toBe('2\n');
  });
});
