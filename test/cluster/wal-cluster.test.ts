import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Reader, WORKLOAD_SCHEMA, Writer, integrityCheck, type ClusterNode, type ReaderSummary } from '../helpers/cluster.js';
import { runProcess } from '../helpers/processes.js';

/*
 * Replication in WAL mode, three `litefs mount` daemons with a static
 * lease: long-lived WAL readers on the replicas (which mmap the wal-index)
 * see every transaction and never half of one, across applies and a
 * snapshot; checkpoints on the primary change nothing anywhere; switching
 * the database to DELETE mode and back replicates; every node's history
 * verifies and replays to the database it has.
 */

const DB = 'db';
const CLI = path.resolve('dist/cli/main.js');
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.create({ lease: { type: 'static' } });
});

afterAll(async () => {
  await cluster?.destroy();
});

async function expectSameEverywhere(nodes: ClusterNode[], rows: number): Promise<void> {
  const pos = await cluster.waitConverged(DB, { nodes });
  for (const n of nodes) {
    expect(await integrityCheck(n, DB), `${n.name} integrity`).toBe('ok');
    const r = await n.sql(DB, 'SELECT count(*) FROM t;');
    expect(r.stdout.trim(), `${n.name} rows`).toBe(String(rows));
    expect(await n.posFile(DB), `${n.name} -pos`).toBe(pos);
    // Every LTX file verifies, and the chain replays to this position.
    const dir = n.node.ltxDir(DB);
    const paths = (await readdir(dir))
      .filter((x) => x.endsWith('.ltx'))
      .sort()
      .map((f) => path.join(dir, f));
    const v = await runProcess(process.execPath, [CLI, 'ltx', 'verify', ...paths], { timeoutMs: 60_000 });
    expect(v.code, `${n.name} ltx verify: ${v.stderr}`).toBe(0);
    const replayed = path.join(n.node.root, 'replayed.db');
    const a = await runProcess(process.execPath, [CLI, 'ltx', 'apply', ...paths, '--db', replayed], { timeoutMs: 60_000 });
    expect(a.code, `${n.name} ltx apply: ${a.stderr}`).toBe(0);
    expect(a.stdout, `${n.name} replayed position`).toContain(`position ${pos}`);
  }
}

describe('three nodes in WAL mode', () => {
  it('long-lived WAL readers on replicas see every commit and never a torn state; a late replica snapshots; checkpoints change nothing', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await cluster.start([0, 1]);
    expect(await cluster.findPrimary()).toBe(n0);
    const schema = await n0.sql(DB, WORKLOAD_SCHEMA.replace('PRAGMA journal_mode=DELETE;', 'PRAGMA journal_mode=WAL;'));
    expect(schema.code, schema.stderr).toBe(0);
    await cluster.waitConverged(DB, { nodes: [n0, n1] });

    const r1 = new Reader(n1.path(DB));
    await r1.started();
    let r2: Reader | null = null;
    let s1: ReaderSummary;
    let s2: ReaderSummary | null = null;
    try {
      const w1 = new Writer([n0.path(DB)], { rate: 100, total: 200 });
      await w1.waitForLine(/^ok 60 /);
      // A checkpoint on the primary mid-stream: nothing to replicate.
      const ck = await n0.sql(DB, 'PRAGMA wal_checkpoint(TRUNCATE);');
      expect(ck.code, ck.stderr).toBe(0);
      await n2.start();
      await cluster.waitConverged(DB, { nodes: [n0, n1, n2], timeoutMs: 30_000 });
      r2 = new Reader(n2.path(DB));
      await r2.started();
      const res1 = await w1.result();
      expect(res1.errors).toEqual([]);
      const w2 = new Writer([n0.path(DB)], { rate: 200, total: 200, firstID: 201 });
      const res2 = await w2.result();
      expect(res2.errors).toEqual([]);
      await r1.waitForRows(400);
      await r2.waitForRows(400);
    } finally {
      s1 = await r1.stop();
      s2 = r2 === null ? null : await r2.stop();
    }
    for (const [name, s] of [
      ['node1', s1],
      ['node2', s2!],
    ] as const) {
      expect(s.torn, `${name} torn reads`).toEqual([]);
      expect(s.backwards, `${name} went backwards`).toEqual([]);
      expect(s.errors, `${name} reader errors`).toEqual([]);
      expect(s.states.at(-1), `${name} final state`).toEqual({ rows: 400, maxID: 400 });
    }
    expect(s1.states.length).toBeGreaterThan(30);
    await expectSameEverywhere([n0, n1, n2], 400);
  });

  it('switching to DELETE mode and back to WAL replicates, and the replicas follow with open readers', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const r1 = new Reader(n1.path(DB));
    await r1.started();
    let s1: ReaderSummary;
    try {
      const toDelete = await n0.sql(DB, 'PRAGMA journal_mode=DELETE;');
      expect(toDelete.stdout.trim()).toBe('delete');
      const w = new Writer([n0.path(DB)], { rate: 100, total: 50, firstID: 401 });
      expect((await w.result()).errors).toEqual([]);
      await cluster.waitConverged(DB);
      for (const n of [n1, n2]) expect((await n.sql(DB, 'PRAGMA journal_mode;')).stdout.trim(), n.name).toBe('delete');
      const toWal = await n0.sql(DB, 'PRAGMA journal_mode=WAL;');
      expect(toWal.stdout.trim()).toBe('wal');
      const w2 = new Writer([n0.path(DB)], { rate: 100, total: 50, firstID: 451 });
      expect((await w2.result()).errors).toEqual([]);
      await r1.waitForRows(500);
    } finally {
      s1 = await r1.stop();
    }
    expect(s1.torn).toEqual([]);
    expect(s1.errors).toEqual([]);
    await expectSameEverywhere([n0, n1, n2], 500);
    for (const n of [n1, n2]) expect((await n.sql(DB, 'PRAGMA journal_mode;')).stdout.trim(), n.name).toBe('wal');
    // A write on a replica in WAL mode is refused (SQLite reports it as an I/O error).
    const refused = await n1.sql(DB, "INSERT INTO t(id, node, v) VALUES (100000, 'replica', NULL);");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/disk I\/O error|readonly/);
    await expectSameEverywhere([n0, n1, n2], 500);
  });
});
