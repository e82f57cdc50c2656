import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { checkConsistency } from './chain.js';
import { CLIENT_KINDS, JOURNAL_MODES, openClient, type SqlClient } from './clients.js';

afterEach(destroyAllNodes);

/**
 * Runs `sql` and then checks the whole history: the chain is contiguous and
 * verifies, the newest post-apply checksum is the underlying file's
 * `litefs ltx checksum`, `-pos` agrees, and the TXID moved by `delta`.
 */
async function step(node: LiteFSNode, db: string, client: SqlClient, sql: string, delta: 0 | 1, before: bigint): Promise<bigint> {
  await client.exec(sql);
  const r = await checkConsistency(node, db);
  expect(r.txid, `after ${JSON.stringify(sql.slice(0, 80))}`).toBe(before + BigInt(delta));
  return r.txid;
}

describe.each(CLIENT_KINDS)('%s on a litefs mount', (kind) => {
  it('creates a database, writes in DELETE, TRUNCATE, PERSIST and WAL modes, reads back; every commit is one verified LTX file', async () => {
    const node = await startNode({ args: ['-debug'] });
    const db = `${kind}.db`;
    const client = openClient(kind, node.path(db));
    try {
      await client.setMode('delete');
      // The first transaction: TXID 1, snapshot-shaped (checked by checkConsistency).
      await client.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, mode TEXT, v BLOB)');
      let txid = (await checkConsistency(node, db)).txid;
      expect(txid).toBe(1n);
      let rows = 0;
      let nextId = 1;

      for (const mode of JOURNAL_MODES) {
        for (const sync of ['FULL', 'NORMAL'] as const) {
          await client.setMode(mode, sync);
          // Switching to or from WAL is itself a transaction (page 1's format bytes).
          txid = (await checkConsistency(node, db)).txid;
          const tag = `${mode}/${sync}`;
          txid = await step(node, db, client, `INSERT INTO t VALUES (${nextId++}, '${tag}', randomblob(100))`, 1, txid);
          rows++;
          // Several pages in one transaction (overflow pages for the blobs).
          const many = Array.from({ length: 20 }, () => `(${nextId++}, '${tag}', randomblob(3000))`).join(',');
          txid = await step(node, db, client, `BEGIN; INSERT INTO t VALUES ${many}; COMMIT;`, 1, txid);
          rows += 20;
          txid = await step(node, db, client, `UPDATE t SET v = randomblob(150) WHERE mode = '${tag}'`, 1, txid);
          // A rolled-back transaction whose journal was never synced: no LTX.
          txid = await step(node, db, client, `BEGIN; INSERT INTO t VALUES (${nextId + 1000}, 'gone', NULL); ROLLBACK;`, 0, txid);
          // A transaction that writes nothing: no journal, no LTX.
          txid = await step(node, db, client, 'BEGIN IMMEDIATE; COMMIT;', 0, txid);
          txid = await step(node, db, client, `DELETE FROM t WHERE id = ${nextId - 1}`, 1, txid);
          rows--;
          const [[n, m]] = (await client.query(`SELECT count(*), count(DISTINCT mode) FROM t`)) as [[string, string]];
          expect(Number(n)).toBe(rows);
          expect(m).not.toBe('0');
        }
      }

      // VACUUM shrinks the file: the LTX commit size drops and pages past it are gone.
      await client.setMode('delete');
      txid = (await checkConsistency(node, db)).txid;
      txid = await step(node, db, client, 'DELETE FROM t WHERE id > 10', 1, txid);
      const before = await checkConsistency(node, db);
      txid = await step(node, db, client, 'VACUUM', 1, txid);
      const after = await checkConsistency(node, db);
      expect(after.chain.at(-1)!.header.commit).toBeLessThan(before.chain.at(-1)!.header.commit);

      // A rollback after the journal was synced and pages reached the
      // database file (a tiny cache forces the spill): the restored pages are
      // written back through the mount, the file is byte-identical to the
      // last commit (no free pages were reused), and no LTX is emitted.
      // In WAL mode the spilled pages are frames that never get a commit frame.
      for (const mode of JOURNAL_MODES) {
        await client.setMode(mode);
        txid = (await checkConsistency(node, db)).txid;
        txid = await step(
          node,
          db,
          client,
          'PRAGMA cache_size=2; BEGIN; UPDATE t SET v = randomblob(4000); ROLLBACK; PRAGMA cache_size=-2000;',
          0,
          txid,
        );
      }
      expect(node.runLog()).toMatch(/transaction left the database unchanged/);

      const check = await client.query('PRAGMA integrity_check');
      expect(check).toEqual([['ok']]);
      const left = await client.query('SELECT id, mode, length(v) FROM t ORDER BY id');
      expect(left.length).toBe(10);
      expect(left[0]).toEqual(['1', 'delete/FULL', '150']);
    } finally {
      await client.close();
    }
    // The client saw its writes; a different client sees them too.
    const other = openClient(kind === 'python' ? 'sqlite3' : 'python', node.path(db));
    try {
      expect(await other.query('SELECT count(*) FROM t')).toEqual([['10']]);
    } finally {
      await other.close();
    }
  });
});
