import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ltxFilename } from '../../src/ltx/index.js';
import {
  Cluster,
  Reader,
  WORKLOAD_SCHEMA,
  Writer,
  integrityCheck,
  poll,
  sleep,
  type ClusterNode,
  type ReaderSummary,
} from '../helpers/cluster.js';
import { runPython } from '../helpers/sqlite-clients.js';

/*
 * Three `litefs mount` daemons with a static lease: node0 is the primary,
 * node1 and node2 replicas. One cluster is shared by the tests below, in
 * order: replication with long-lived readers and a late replica, replica
 * write rejection and `.primary`, `.lag` while the primary is silent, and
 * a replica that comes back after the primary's retention removed the LTX
 * files it needed.
 */

const DB = 'db';
let cluster: Cluster;
let rowsWritten = 0;

beforeAll(async () => {
  cluster = await Cluster.create({
    lease: { type: 'static' },
    // Short retention on the primary so a replica that was away misses LTX files.
    nodes: [{ retention: '2s', retentionMonitorInterval: '250ms' }],
    debug: true,
  });
});

afterAll(async () => {
  await cluster?.destroy();
});

/** count, max(id), sum(id), c.n through `node`'s mount. */
async function rowSummary(node: ClusterNode): Promise<string> {
  const r = await node.sql(DB, "SELECT count(*) || ' ' || max(id) || ' ' || sum(id) || ' ' || (SELECT n FROM c) FROM t;");
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

function expectedSummary(n: number): string {
  return `${n} ${n} ${(n * (n + 1)) / 2} ${n}`;
}

/** Every node's copy of `db` is the same database, byte-for-byte by checksum, and sound. */
async function expectIdentical(nodes: ClusterNode[]): Promise<void> {
  const pos = await cluster.waitConverged(DB, { nodes });
  const want = pos.split('/')[1];
  for (const n of nodes) {
    expect(await n.fileChecksum(DB), `${n.name} database file checksum`).toBe(want);
    expect(await n.posFile(DB), `${n.name} ${DB}-pos`).toBe(pos);
    expect(await integrityCheck(n, DB), `${n.name} integrity_check`).toBe('ok');
    expect(await rowSummary(n), `${n.name} rows`).toBe(expectedSummary(rowsWritten));
  }
}

describe('three nodes, static lease', () => {
  it('replicates writes to both replicas; long-lived readers see every row and never a torn state; a late replica catches up by snapshot', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await cluster.start([0, 1]);
    expect(await cluster.findPrimary()).toBe(n0);
    const schema = await n0.sql(DB, WORKLOAD_SCHEMA);
    expect(schema.code, schema.stderr).toBe(0);
    await cluster.waitConverged(DB, { nodes: [n0, n1] });

    const r1 = new Reader(n1.path(DB));
    await r1.started();
    let r2: Reader | null = null;
    let s1: ReaderSummary;
    let s2: ReaderSummary | null = null;
    try {
      const w1 = new Writer([n0.path(DB)], { rate: 100, total: 300 });
      await w1.waitForLine(/^ok 100 /);
      // node2 joins with nothing while the primary is busy.
      await n2.start();
      await cluster.waitConverged(DB, { nodes: [n0, n1, n2], timeoutMs: 30_000 });
      r2 = new Reader(n2.path(DB));
      await r2.started();
      const res1 = await w1.result();
      expect(res1.errors).toEqual([]);
      expect(res1.committed.size).toBe(300);
      // A second burst, faster, that both readers watch from the start.
      const w2 = new Writer([n0.path(DB)], { rate: 250, total: 300, firstID: 301 });
      const res2 = await w2.result();
      expect(res2.errors).toEqual([]);
      expect(res2.committed.size).toBe(300);
      rowsWritten = 600;
      await r1.waitForRows(600);
      await r2.waitForRows(600);
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
      expect(s.states.at(-1), `${name} final state`).toEqual({ rows: 600, maxID: 600 });
    }
    // The readers watched the rows arrive, not just the end result.
    expect(s1.states.length).toBeGreaterThan(50);
    expect(s2!.states.length).toBeGreaterThan(20);

    await expectIdentical([n0, n1, n2]);

    // node2 started empty: the primary sent it a snapshot, and its history
    // starts with that snapshot file (TXID 1 up to where it joined).
    const id2 = (await n2.info()).nodeID;
    const snaps = n0.logged(/^sent snapshot$/).filter((l) => l['replica'] === id2);
    expect(snaps.length).toBe(1);
    const snapTXID = BigInt(`0x${String(snaps[0]!['txid'])}`);
    expect(snapTXID).toBeGreaterThan(1n);
    expect(await readdir(n2.node.ltxDir(DB))).toContain(ltxFilename(1n, snapTXID));
    // node1 was there from the start: only TXID 1 came as a snapshot (as in
    // LiteFS, a streamed TXID 1 always does), everything after it as LTX files.
    const id1 = (await n1.info()).nodeID;
    expect(
      n0
        .logged(/^sent snapshot$/)
        .filter((l) => l['replica'] === id1)
        .map((l) => l['txid']),
    ).toEqual(['1']);
  });

  it('refuses writes on a replica with SQLITE_READONLY; an app finds the primary through .primary', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const before = await n1.position(DB);
    const r = await n1.sql(DB, "INSERT INTO t(id, node, v) VALUES (100000, 'replica', NULL);");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/attempt to write a readonly database/);

    // The app: try the local database; on SQLITE_READONLY read .primary
    // and write through the primary's mount instead.
    const app = String.raw`
import sqlite3, sys, os
local, mounts = sys.argv[1], dict(a.split('=', 1) for a in sys.argv[2:])
db = sqlite3.connect(os.path.join(local, 'db'), timeout=5, isolation_level=None)
try:
    db.execute("INSERT INTO t(id, node, v) VALUES (601, 'app', NULL)")
    print('wrote locally')
except sqlite3.Error as e:
    print('local error', e.sqlite_errorcode & 0xff, e.sqlite_errorname)
    primary = open(os.path.join(local, '.primary')).read().strip()
    print('primary', primary)
    p = sqlite3.connect(os.path.join(mounts[primary], 'db'), timeout=5, isolation_level=None)
    p.execute('BEGIN IMMEDIATE')
    p.execute("INSERT INTO t(id, node, v) VALUES (601, 'app', NULL)")
    p.execute('UPDATE c SET n = n + 1')
    p.execute('COMMIT')
    print('wrote on', primary)
`;
    const out = await runPython(app, [n2.node.mountDir, ...cluster.nodes.map((n) => `${n.name}=${n.node.mountDir}`)]);
    expect(out.stderr).toBe('');
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^local error 8 SQLITE_READONLY/);
    expect(lines.slice(1)).toEqual(['primary node0', 'wrote on node0']);
    rowsWritten = 601;

    expect(await n1.primaryFile()).toBe('node0');
    expect(await n2.primaryFile()).toBe('node0');
    expect(await n0.primaryFile()).toBeNull();
    // A replica cannot create a database either.
    const created = await n1.sql('other.db', 'CREATE TABLE x(a);');
    expect(created.code).not.toBe(0);
    expect((await n1.info()).databases.map((d) => d.name)).toEqual([DB]);

    await expectIdentical([n0, n1, n2]);
    expect(await n1.position(DB)).not.toBe(before); // it moved by the app's write on the primary only
  });

  it('.lag grows while the primary is silent and drops back after contact', async () => {
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    // Heartbeats every second keep a connected, idle replica's lag near zero.
    const idle = await poll(
      async () => {
        const l = await n1.lagFile();
        return l < 100 ? l : undefined;
      },
      'a small .lag on node1',
      10_000,
    );
    expect(idle).toBeLessThan(100);
    expect(await n0.lagFile()).toBe(0);
    // Freeze the primary (no heartbeats, no data) for three seconds.
    const pid = n0.pid!;
    process.kill(pid, 'SIGSTOP');
    const during: number[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        await sleep(500);
        during.push(await n1.lagFile());
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Silence is trusted for 1.5 s (a heartbeat may be up to a second away);
    // from 2 s on the heartbeat is overdue whatever its phase, and the lag
    // counts the whole silence.
    for (let i = 3; i < during.length; i++) expect(during[i]!, `lag samples ${during.join(',')}`).toBeGreaterThan(during[i - 1]!);
    expect(during.at(-1)!).toBeGreaterThanOrEqual(2500);
    const after = await poll(
      async () => {
        const l = await n1.lagFile();
        return l < 1500 ? l : undefined;
      },
      '.lag to drop after the primary resumed',
      10_000,
    );
    expect(after).toBeLessThan(during.at(-1)!);
    // The stream survived: node1 still follows node0 and gets new writes.
    const w = new Writer([n0.path(DB)], { rate: 0, total: 5, firstID: 602 });
    expect((await w.result()).committed.size).toBe(5);
    rowsWritten = 606;
    await cluster.waitConverged(DB, { nodes: [n0, n1] });
  });

  it('a replica that was away longer than the primary keeps LTX files catches up by snapshot', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await cluster.waitConverged(DB);
    const away = await n2.position(DB);
    const awayTXID = BigInt(`0x${away!.split('/')[0]!}`);
    await n2.node.stop();
    const w = new Writer([n0.path(DB)], { rate: 0, total: 20, firstID: 607 });
    expect((await w.result()).committed.size).toBe(20);
    rowsWritten = 626;
    // Retention (2 s) removes the file node2 would need next.
    const needed = ltxFilename(awayTXID + 1n, awayTXID + 1n);
    await poll(
      async () => ((await readdir(n0.node.ltxDir(DB))).includes(needed) ? undefined : true),
      `retention to remove ${needed}`,
      20_000,
      200,
    );
    await n2.start();
    const pos = await cluster.waitConverged(DB);
    const id2 = (await n2.info()).nodeID;
    const snaps = n0.logged(/^sent snapshot$/).filter((l) => l['replica'] === id2);
    expect(snaps.length).toBe(1);
    expect(BigInt(`0x${String(snaps[0]!['txid'])}`)).toBe(BigInt(`0x${pos.split('/')[0]!}`));
    await expectIdentical([n0, n1, n2]);
  });
  it('the primary restarts: replicas reconnect, keep their data and follow the new run', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const before = await cluster.waitConverged(DB);
    const reader = new Reader(n1.path(DB));
    await reader.started();
    let summary: ReaderSummary;
    try {
      await n0.node.stop();
      // While the primary is down the replicas still serve reads.
      expect(await rowSummary(n2)).toBe(expectedSummary(rowsWritten));
      await n0.start();
      expect(await cluster.findPrimary()).toBe(n0);
      const w = new Writer([n0.path(DB)], { rate: 0, total: 10, firstID: rowsWritten + 1 });
      expect((await w.result()).committed.size).toBe(10);
      rowsWritten += 10;
      await reader.waitForRows(rowsWritten);
    } finally {
      summary = await reader.stop();
    }
    expect(summary.torn).toEqual([]);
    expect(summary.backwards).toEqual([]);
    const after = await cluster.waitConverged(DB);
    expect(BigInt(`0x${after.split('/')[0]!}`)).toBe(BigInt(`0x${before.split('/')[0]!}`) + 10n);
    await expectIdentical([n0, n1, n2]);
    // They caught up with LTX files: no snapshot for anyone from the new run.
    expect(n0.logged(/^sent snapshot$/, false)).toEqual([]);
  });
});
