import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runPython, runSqlite3, spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import { checkConsistency, ltxCount } from './chain.js';
import { JOURNAL_MODES } from './clients.js';

afterEach(destroyAllNodes);

/**
 * Runs Python code with `path` = the database in the mount, `os`, `errno`
 * imported, and a helper `attempt(label, fn)` that prints
 * "label: ok" or "label: <ERRNO NAME>" for an OSError.
 */
async function pyOps(node: LiteFSNode, db: string, code: string): Promise<Record<string, string>> {
  const prelude = [
    'import errno, os, sys',
    'path = sys.argv[1]',
    'mnt = os.path.dirname(path)',
    'def attempt(label, fn):',
    '    try:',
    '        fn()',
    "        print(f'{label}: ok', flush=True)",
    '    except OSError as e:',
    "        print(f'{label}: {errno.errorcode.get(e.errno, e.errno)}', flush=True)",
    '',
  ].join('\n');
  const r = await runPython(prelude + code, [node.path(db)], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`python failed: ${r.stderr}`);
  const out: Record<string, string> = {};
  for (const line of r.stdout.trim().split('\n')) {
    const i = line.indexOf(': ');
    out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

/** The database still passes integrity_check, has its rows, and matches its last LTX. */
async function expectIntact(node: LiteFSNode, db: string, rows: number, txid: bigint): Promise<void> {
  const r = await runSqlite3(node.path(db), 'PRAGMA integrity_check; SELECT count(*) FROM t;', { busyTimeoutMs: 5000 });
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe(`ok\n${rows}\n`);
  expect((await checkConsistency(node, db)).txid).toBe(txid);
}

async function seed(node: LiteFSNode, db: string, mode = 'delete'): Promise<bigint> {
  const r = await runSqlite3(
    node.path(db),
    `PRAGMA journal_mode=${mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t SELECT value, randomblob(1000) FROM generate_series(1, 50);`,
  );
  expect(r.code).toBe(0);
  return (await checkConsistency(node, db)).txid;
}

describe('bad input gets an errno and leaves the database intact', () => {
  it('database writes that are not whole pages at page boundaries: EINVAL', async () => {
    const node = await startNode();
    const txid = await seed(node, 'a.db');
    const res = await pyOps(
      node,
      'a.db',
      [
        'fd = os.open(path, os.O_RDWR)',
        "attempt('unaligned', lambda: os.pwrite(fd, b'x' * 4096, 4096 + 7))",
        "attempt('short', lambda: os.pwrite(fd, b'x' * 100, 8192))",
        "attempt('header', lambda: os.pwrite(fd, b'y' * 100, 0))",
        "attempt('long', lambda: os.pwrite(fd, b'z' * 5000, 4096))",
        'os.close(fd)',
      ].join('\n'),
    );
    expect(res).toEqual({ unaligned: 'EINVAL', short: 'EINVAL', header: 'EINVAL', long: 'EINVAL' });
    await expectIntact(node, 'a.db', 50, txid);
  });

  for (const mode of JOURNAL_MODES) {
    it(`${mode}: whole-page writes and resizes outside a journaled transaction are refused (ENOTSUP / EINVAL)`, async () => {
      const node = await startNode();
      const txid = await seed(node, 'p.db', mode);
      const res = await pyOps(
        node,
        'p.db',
        [
          'fd = os.open(path, os.O_RDWR)',
          "attempt('page', lambda: os.pwrite(fd, b'\\0' * 4096, 4096))",
          "attempt('shrink', lambda: os.ftruncate(fd, 4096))",
          "attempt('grow', lambda: os.ftruncate(fd, 1 << 20))",
          "attempt('unaligned-size', lambda: os.ftruncate(fd, 5000))",
          'os.close(fd)',
        ].join('\n'),
      );
      expect(res).toEqual({ page: 'ENOTSUP', shrink: 'ENOTSUP', grow: 'ENOTSUP', 'unaligned-size': 'EINVAL' });
      await expectIntact(node, 'p.db', 50, txid);
      expect(node.runLog()).toMatch(/outside a journaled transaction/);
    });
  }

  it('journal_mode=OFF and MEMORY after a persistent journal: writes fail, nothing half-replicated', async () => {
    const node = await startNode();
    const txid = await seed(node, 'o.db', 'truncate');
    for (const mode of ['off', 'memory']) {
      const r = await runSqlite3(node.path('o.db'), `PRAGMA journal_mode=${mode}; INSERT INTO t VALUES (1000, 'x');`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/disk I\/O error/);
    }
    await expectIntact(node, 'o.db', 50, txid);
    // A restart finds the database matching its last LTX file.
    await node.stop();
    await node.start();
    await expectIntact(node, 'o.db', 50, txid);
  });

  it('names the mount does not serve: EPERM, ENOTDIR or ENOTSUP, never a new file', async () => {
    const node = await startNode();
    const txid = await seed(node, 'n.db');
    const res = await pyOps(
      node,
      'n.db',
      [
        "attempt('dotfile', lambda: open(os.path.join(mnt, '.hidden'), 'w').close())",
        "attempt('pos', lambda: open(os.path.join(mnt, 'x.db-pos'), 'w').close())",
        "attempt('lock', lambda: open(os.path.join(mnt, 'x.db-lock'), 'w').close())",
        "attempt('wal', lambda: open(os.path.join(mnt, 'n.db-wal'), 'w').close())",
        "attempt('shm', lambda: open(os.path.join(mnt, 'n.db-shm'), 'w').close())",
        "attempt('journal-of-missing-db', lambda: open(os.path.join(mnt, 'missing.db-journal'), 'w').close())",
        "attempt('mkdir', lambda: os.mkdir(os.path.join(mnt, 'sub')))",
        "attempt('nested', lambda: open(os.path.join(mnt, 'n.db', 'x'), 'w').close())",
        "attempt('symlink', lambda: os.symlink('n.db', os.path.join(mnt, 'link')))",
        "attempt('hardlink', lambda: os.link(path, os.path.join(mnt, 'hard.db')))",
        "attempt('rename', lambda: os.rename(path, os.path.join(mnt, 'renamed.db')))",
        "attempt('fifo', lambda: os.mkfifo(os.path.join(mnt, 'fifo')))",
        "attempt('write-pos', lambda: open(path + '-pos', 'w').write('x'))",
        "attempt('write-lag', lambda: open(os.path.join(mnt, '.lag'), 'w').write('x'))",
        "print('listing: ' + ','.join(sorted(os.listdir(mnt))))",
      ].join('\n'),
    );
    expect(res).toEqual({
      dotfile: 'EPERM',
      pos: 'EPERM',
      lock: 'EPERM',
      wal: 'ENOTSUP',
      shm: 'ENOTSUP',
      'journal-of-missing-db': 'ENOENT',
      mkdir: 'EPERM',
      nested: 'ENOTDIR',
      symlink: 'EPERM',
      hardlink: 'EPERM',
      rename: 'EPERM',
      fifo: 'EPERM',
      'write-pos': 'EPERM',
      'write-lag': 'EPERM',
      listing: '.lag,n.db,n.db-pos',
    });
    await expectIntact(node, 'n.db', 50, txid);
  });

  it('truncating a live journal to a non-zero size: EINVAL, and the transaction still rolls back cleanly', async () => {
    const node = await startNode();
    const txid = await seed(node, 'j.db', 'persist');
    const writer = spawnPythonSqlite(
      node.path('j.db'),
      [
        "db.execute('PRAGMA journal_mode=persist')",
        "db.execute('PRAGMA cache_size=2')",
        "db.execute('BEGIN')",
        "db.execute('UPDATE t SET v = randomblob(1200)')",
        "print('spilled', flush=True)",
        'sys.stdin.readline()',
        "db.execute('ROLLBACK')",
        "print('rolled back', flush=True)",
      ].join('\n'),
      { busyTimeoutMs: 5000 },
    );
    let res: Record<string, string>;
    try {
      await writer.waitForLine('spilled');
      res = await pyOps(
        node,
        'j.db',
        [
          "attempt('shrink', lambda: os.truncate(path + '-journal', 1000))",
          "attempt('grow', lambda: os.truncate(path + '-journal', 1 << 20))",
        ].join('\n'),
      );
      writer.writeLine('go');
      await writer.waitForLine('rolled back');
    } finally {
      writer.end();
      await writer.exited;
    }
    expect(res).toEqual({ shrink: 'EINVAL', grow: 'EINVAL' });
    await expectIntact(node, 'j.db', 50, txid);
    expect(await ltxCount(node.ltxDir('j.db'))).toBe(Number(txid));
  });

  it('virtual files cannot be resized and an empty journal cannot be grown', async () => {
    const node = await startNode();
    const txid = await seed(node, 'v.db', 'truncate');
    const res = await pyOps(
      node,
      'v.db',
      ["attempt('pos', lambda: os.truncate(path + '-pos', 0))", "attempt('journal', lambda: os.truncate(path + '-journal', 4096))"].join(
        '\n',
      ),
    );
    expect(res).toEqual({ pos: 'EPERM', journal: 'EINVAL' });
    await expectIntact(node, 'v.db', 50, txid);
  });
});
