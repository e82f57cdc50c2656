import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, WORKLOAD_SCHEMA, Writer, integrityCheck, poll, type ClusterNode } from '../helpers/cluster.js';
import { runProcess } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';

/*
 * Deleting a database on the primary (`rm` in the mount) must not stall
 * replication of the others: replicas drop it and keep streaming, a new
 * replica skips it, the name can be used again, and retention eventually
 * removes what is left of it. Three daemons with a static lease; node2
 * joins late.
 */

let cluster: Cluster;
let work: string;
const CLI = path.resolve('dist/cli/main.js');

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'litefs-deleted-'));
  cluster = await Cluster.create({
    lease: { type: 'static' },
    retention: '3s',
    retentionMonitorInterval: '500ms',
  });
});

afterAll(async () => {
  await cluster?.destroy();
  await rm(work, { recursive: true, force: true });
});

async function dbNames(n: ClusterNode): Promise<string[]> {
  return (await n.info()).databases.map((d) => d.name).sort();
}

async function count(n: ClusterNode, db: string): Promise<string> {
  const r = await n.sql(db, 'SELECT count(*) FROM t;');
  expect(r.code, `${n.name} ${db}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

describe('deleted databases', () => {
  it('replicas drop a deleted database and keep streaming the others; a fresh replica skips it; the name works again', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await cluster.start([0, 1]);
    expect(await cluster.findPrimary()).toBe(n0);
    for (const db of ['a.db', 'b.db', 'c.db']) {
      const r = await n0.sql(db, `${WORKLOAD_SCHEMA} INSERT INTO t(id, v) VALUES (1, 1), (2, 2);`);
      expect(r.code, r.stderr).toBe(0);
      await cluster.waitConverged(db, { nodes: [n0, n1] });
    }

    // Writes to b.db and c.db continue while a.db goes away.
    const writers = ['b.db', 'c.db'].map((db) => new Writer([n0.path(db)], { rate: 40, total: 80, firstID: 1000 }));
    await Promise.all(writers.map((w) => w.waitForLine(/^ok 1010 /)));
    await rm(n0.path('a.db'));
    const results = await Promise.all(writers.map((w) => w.result()));
    for (const r of results) {
      expect(r.errors).toEqual([]);
      expect(r.committed.size).toBe(80);
    }
    await poll(async () => ((await dbNames(n1)).includes('a.db') ? undefined : true), 'node1 to drop a.db');
    for (const db of ['b.db', 'c.db']) await cluster.waitConverged(db, { nodes: [n0, n1] });
    expect(await readdir(n1.node.mountDir)).not.toContain('a.db');
    await expect(stat(n1.node.databaseFile('a.db'))).rejects.toThrow(/ENOENT/);
    // Nothing about the failure loop LiteFS had: no stream error on the replica.
    expect(n1.logged(/replication stream failed/)).toEqual([]);

    // A new replica gets the two live databases and nothing of the deleted one.
    await n2.start();
    for (const db of ['b.db', 'c.db']) await cluster.waitConverged(db, { nodes: [n0, n1, n2] });
    expect(await dbNames(n2)).toEqual(['b.db', 'c.db']);
    expect(await readdir(n2.node.mountDir)).not.toContain('a.db');
    expect(n2.logged(/replication stream failed/)).toEqual([]);
    for (const n of [n0, n1, n2]) {
      for (const db of ['b.db', 'c.db']) {
        expect(await count(n, db)).toBe('82');
        expect(await integrityCheck(n, db)).toBe('ok');
        expect(await n.fileChecksum(db)).toBe((await n0.position(db))!.split('/')[1]);
      }
    }

    // The name can be used again, and the new database replicates.
    const again = await n0.sql('a.db', `${WORKLOAD_SCHEMA} INSERT INTO t(v) VALUES (7);`);
    expect(again.code, again.stderr).toBe(0);
    await cluster.waitConverged('a.db', { nodes: [n0, n1, n2] });
    for (const n of [n0, n1, n2]) expect(await count(n, 'a.db')).toBe('1');
  });

  it('a database replaced by litefs import, then deleted, converges everywhere; retention removes what is left of a deleted database', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const file = path.join(work, 'import.db');
    const made = await runSqlite3(file, `${WORKLOAD_SCHEMA} INSERT INTO t(v) VALUES (1), (2), (3);`);
    expect(made.code, made.stderr).toBe(0);
    const imp = await runProcess(process.execPath, [CLI, 'import', '-name', 'b.db', '-url', n0.url, file], { timeoutMs: 30_000 });
    expect(imp.code, imp.stderr).toBe(0);
    await cluster.waitConverged('b.db', { nodes: [n0, n1, n2] });
    for (const n of [n0, n1, n2]) expect(await count(n, 'b.db')).toBe('3');

    await rm(n0.path('b.db'));
    for (const n of [n1, n2]) await poll(async () => ((await dbNames(n)).includes('b.db') ? undefined : true), `${n.name} to drop b.db`);
    // c.db still replicates.
    const w = new Writer([n0.path('c.db')], { rate: 50, total: 20, firstID: 5000 });
    expect((await w.result()).errors).toEqual([]);
    await cluster.waitConverged('c.db', { nodes: [n0, n1, n2] });

    // Retention (3 s here) removes the deleted database's directory everywhere.
    for (const n of [n0, n1, n2]) {
      await poll(
        async () =>
          stat(path.dirname(n.node.databaseFile('b.db'))).then(
            () => undefined,
            () => true,
          ),
        `${n.name} to remove the deleted b.db directory`,
        20_000,
        200,
      );
    }
    expect((await n0.info()).databases.map((d) => d.name)).not.toContain('b.db');
  });

  it('100 immediate reads on an idle replica: no failures; right after each write, readers with a busy timeout all succeed', async () => {
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    const w = await n0.sql('c.db', 'INSERT INTO t(v) VALUES (1);');
    expect(w.code, w.stderr).toBe(0);
    await cluster.waitConverged('c.db', { nodes: [n0, n1] });
    const errors: string[] = [];
    for (let i = 0; i < 100; i++) {
      // No busy timeout: nothing may hold the lock of an idle replica's database.
      const r = await runSqlite3(n1.path('c.db'), 'SELECT count(*) FROM t;', { timeoutMs: 10_000 });
      if (r.code !== 0) errors.push(r.stderr.trim());
    }
    expect(errors).toEqual([]);
    // The README tour: a write on the primary, then at once a read on the
    // replica (with a busy timeout, as for any database shared between
    // processes): an apply holds readers off for well under that.
    for (let i = 0; i < 30; i++) {
      const wr = await n0.sql('c.db', `INSERT INTO t(v) VALUES (${i});`);
      expect(wr.code, wr.stderr).toBe(0);
      const r = await runSqlite3(n1.path('c.db'), 'SELECT count(*) FROM t;', { timeoutMs: 10_000, busyTimeoutMs: 2000 });
      if (r.code !== 0) errors.push(r.stderr.trim());
    }
    expect(errors).toEqual([]);
  });
});
