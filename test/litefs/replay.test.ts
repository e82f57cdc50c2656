import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode } from '../helpers/daemon.js';
import { checkConsistency, databaseImage, runCli } from './chain.js';
import { JOURNAL_MODES, openClient } from './clients.js';

afterEach(destroyAllNodes);

describe('replaying the LTX chain', () => {
  it('`litefs ltx apply` of the chain onto an empty file reproduces the database byte for byte after every transaction', async () => {
    const node = await startNode({ compress: true });
    const db = 'replay.db';
    const client = openClient('python', node.path(db));
    const images: Buffer[] = [];
    const record = async (): Promise<void> => {
      const c = await checkConsistency(node, db);
      expect(c.txid).toBe(BigInt(images.length + 1));
      images.push(await databaseImage(node, db));
    };
    try {
      await client.setMode('delete');
      await client.exec('PRAGMA page_size=1024');
      await client.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, mode TEXT, v BLOB)');
      await record();
      let id = 0;
      for (const mode of JOURNAL_MODES) {
        await client.setMode(mode);
        // Switching to or from WAL is a transaction of its own.
        if ((await checkConsistency(node, db)).txid > BigInt(images.length)) await record();
        await client.exec(`INSERT INTO t VALUES (${++id}, '${mode}', randomblob(50))`);
        await record();
        await client.exec(
          `BEGIN; WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 40) INSERT INTO t SELECT ${id} + n, '${mode}', randomblob(700) FROM s; COMMIT;`,
        );
        id += 40;
        await record();
        await client.exec(`UPDATE t SET v = randomblob(2000) WHERE id % 7 = 0`);
        await record();
        await client.exec(`DELETE FROM t WHERE id % 3 = 0`);
        await record();
      }
      await client.exec('CREATE INDEX t_mode ON t(mode, id)');
      await record();
      await client.exec('VACUUM');
      await record();
      await client.exec(`DELETE FROM t WHERE id > 20`);
      await record();
    } finally {
      await client.close();
    }
    const chain = (await checkConsistency(node, db)).chain;
    expect(chain).toHaveLength(images.length);
    const target = path.join(node.root, 'replayed.db');
    for (let k = 1; k <= chain.length; k++) {
      await rm(target, { force: true });
      await writeFile(target, '');
      const r = await runCli(['ltx', 'apply', ...chain.slice(0, k).map((c) => c.path), '--db', target]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const replayed = await readFile(target);
      expect(replayed.length, `after TXID ${k}`).toBe(images[k - 1]!.length);
      expect(Buffer.compare(replayed, images[k - 1]!), `bytes after TXID ${k}`).toBe(0);
    }
    // The replayed file is a healthy SQLite database with the same rows.
    const check = openClient('sqlite3', target);
    expect(await check.query('PRAGMA integrity_check')).toEqual([['ok']]);
    expect(await check.query('SELECT count(*) FROM t')).toEqual([[String(20 - Math.floor(20 / 3))]]);
  });
});
