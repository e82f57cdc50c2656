import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ltxFilename, parseLtxFilename, verifyLtxFile } from '../../src/ltx/index.js';
import { ConsulTestDouble } from '../doubles/consul-double.js';
import {
  Cluster,
  Reader,
  WORKLOAD_SCHEMA,
  Writer,
  integrityCheck,
  poll,
  quarantined,
  type ClusterNode,
  type ReaderSummary,
} from '../helpers/cluster.js';
import { spawnPythonSqlite } from '../helpers/sqlite-clients.js';

/*
 * Three daemons electing their primary through Consul's HTTP API (the
 * ConsulTestDouble, sessions expiring after exactly their 10 s TTL, 1 s
 * lock-delay). node0 and node1 are candidates; node2 is not and must never
 * become primary, which a watcher checks for the whole file. The tests
 * share the cluster and run in order: replication, promote/handoff,
 * failover by SIGKILL under a write load, and a split brain whose
 * unreplicated transactions end up in quarantine.
 */

const DB = 'db';
const KEY = 'litefs/primary';
const TTL_MS = 10_000;
const LOCK_DELAY_MS = 1_000;

let consul: ConsulTestDouble;
let cluster: Cluster;
let watcher: NodeJS.Timeout | null = null;
const node2Primary: string[] = [];

beforeAll(async () => {
  consul = await ConsulTestDouble.start({ ttlMultiplier: 1 });
  cluster = await Cluster.create({
    lease: { type: 'consul', url: consul.url, key: KEY, ttl: `${TTL_MS / 1000}s`, lockDelay: `${LOCK_DELAY_MS / 1000}s` },
    nodes: [{}, {}, { candidate: false }],
    debug: true,
  });
  // The non-candidate must never hold the lease or claim the role.
  watcher = setInterval(() => {
    const v = consul.kv(KEY)?.value ?? '';
    if (v.includes('"node2"')) node2Primary.push(`consul key: ${v}`);
    const n2 = cluster.node(2);
    if (n2.running) {
      void n2
        .info(1000)
        .then((i) => {
          if (i.isPrimary) node2Primary.push('node2 /info isPrimary');
        })
        .catch(() => undefined);
    }
  }, 100);
});

afterAll(async () => {
  if (watcher !== null) clearInterval(watcher);
  await cluster?.destroy();
  await consul?.close();
});

/** The primary's PrimaryInfo hostname in Consul, or null. */
function leaseHolder(): string | null {
  const v = consul.kv(KEY)?.value ?? '';
  if (v === '') return null;
  return (JSON.parse(v) as { hostname: string }).hostname;
}

/** The candidate that is not `node`. */
function otherCandidate(node: ClusterNode): ClusterNode {
  return node === cluster.node(0) ? cluster.node(1) : cluster.node(0);
}

function txidOf(pos: string | null): bigint {
  return BigInt(`0x${pos!.split('/')[0]!}`);
}

async function ids(node: ClusterNode): Promise<Set<number>> {
  const r = await node.sql(DB, 'SELECT id FROM t ORDER BY id;', 60_000);
  expect(r.code, r.stderr).toBe(0);
  return new Set(
    r.stdout
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .map(Number),
  );
}

/** All running nodes hold the same, sound database, consistent with its counter. */
async function expectIdentical(nodes: ClusterNode[]): Promise<string> {
  const pos = await cluster.waitConverged(DB, { nodes, timeoutMs: 30_000 });
  const want = pos.split('/')[1];
  let rows: string | null = null;
  for (const n of nodes) {
    expect(await n.fileChecksum(DB), `${n.name} database file checksum`).toBe(want);
    expect(await integrityCheck(n, DB), `${n.name} integrity_check`).toBe('ok');
    const r = await n.sql(DB, "SELECT count(*) || ' ' || (SELECT n FROM c) FROM t;");
    const [count, counter] = r.stdout.trim().split(' ');
    expect(count, `${n.name} count(t) = c.n`).toBe(counter);
    rows ??= r.stdout;
    expect(r.stdout).toBe(rows);
  }
  return pos;
}

describe('three nodes, Consul lease', () => {
  it('elects a primary and replicates to both replicas; long-lived readers never see a torn state', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await n0.start();
    expect(await cluster.findPrimary({ among: [n0] })).toBe(n0);
    await cluster.start([1, 2]);
    expect(await cluster.findPrimary()).toBe(n0);
    expect(leaseHolder()).toBe('node0');
    expect((await n1.info()).candidate).toBe(true);
    expect((await n2.info()).candidate).toBe(false);

    const schema = await n0.sql(DB, WORKLOAD_SCHEMA);
    expect(schema.code, schema.stderr).toBe(0);
    await cluster.waitConverged(DB);
    const readers = [new Reader(n1.path(DB)), new Reader(n2.path(DB))];
    const summaries: ReaderSummary[] = [];
    try {
      for (const r of readers) await r.started();
      const w = new Writer([n0.path(DB)], { rate: 150, total: 300 });
      const res = await w.result();
      expect(res.errors).toEqual([]);
      expect(res.committed.size).toBe(300);
      for (const r of readers) await r.waitForRows(300);
    } finally {
      for (const r of readers) summaries.push(await r.stop());
    }
    for (const s of summaries) {
      expect(s.torn).toEqual([]);
      expect(s.backwards).toEqual([]);
      expect(s.errors).toEqual([]);
      expect(s.states.at(-1)).toEqual({ rows: 300, maxID: 300 });
      expect(s.states.length).toBeGreaterThan(30);
    }
    await expectIdentical([n0, n1, n2]);
    expect(await n1.primaryFile()).toBe('node0');
    expect(await n2.primaryFile()).toBe('node0');
  });

  it('POST /promote moves the lease to a caught-up candidate under a write load; the old primary follows it; no acknowledged write is lost', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const session = consul.kv(KEY)!.session;
    // A non-candidate may not ask.
    const refused = await fetch(`${n2.url}/promote`, { method: 'POST' });
    expect(refused.status).toBe(409);
    // Promoting the primary itself is a no-op.
    expect((await fetch(`${n0.url}/promote`, { method: 'POST' })).status).toBe(200);

    const writer = new Writer([n0.path(DB), n1.path(DB)], { rate: 100, firstID: 1001 });
    await writer.waitForLine(/^ok 1050 /);
    const promote = await fetch(`${n1.url}/promote`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
    expect(promote.status, await promote.clone().text()).toBe(200);
    expect((await n1.info()).isPrimary).toBe(true);
    // The writer notices (SQLITE_READONLY on node0) and moves to node1.
    await writer.waitForLine(/^ok \d+ 1 /);
    const res = await writer.stop();
    expect(res.committed.size).toBeGreaterThan(50);
    expect([...res.committed.values()]).toContain(1);
    expect(
      res.errors.every((e) => /readonly|disk I\/O|locked/i.test(e)),
      res.errors.join('\n'),
    ).toBe(true);

    expect(await cluster.findPrimary()).toBe(n1);
    expect(leaseHolder()).toBe('node1');
    // The same Consul session moved with the lease (no expiry, no lock-delay).
    expect(consul.kv(KEY)!.session).toBe(session);
    expect(await n0.primaryFile()).toBe('node1');
    expect(await n2.primaryFile()).toBe('node1');
    // The old primary waited for the key to name node1 instead of dialling itself.
    expect(n0.logged(/cannot connect to self/)).toEqual([]);

    await expectIdentical([n0, n1, n2]);
    const have = await ids(n0);
    const lost = [...res.committed.keys()].filter((id) => !have.has(id));
    expect(lost, 'acknowledged writes missing after the handoff').toEqual([]);
    // A handoff loses nothing, so nothing was re-snapshotted or moved aside.
    expect(n0.logged(/resnapshot replaces/)).toEqual([]);
    expect(await quarantined(n0, DB)).toEqual([]);
  });

  it('a commit in flight when the handoff starts reaches the new primary before the lease does', async () => {
    const n2 = cluster.node(2);
    const old = await cluster.findPrimary();
    const target = otherCandidate(old);
    const txid = txidOf(await old.position(DB)) + 1n;
    const tmpName = `${ltxFilename(txid, txid)}.tmp`;
    // One large transaction: its LTX file takes a while to write, and the
    // promote request lands while it does.
    const big = spawnPythonSqlite(
      old.path(DB),
      [
        "db.execute('BEGIN IMMEDIATE')",
        'db.execute("INSERT INTO t(id, node, v) VALUES (20001, \'big\', randomblob(32 * 1024 * 1024))")',
        "db.execute('UPDATE c SET n = n + 1')",
        "print('committing', flush=True)",
        'try:',
        "    db.execute('COMMIT')",
        "    print('acknowledged', flush=True)",
        'except Exception as e:',
        "    print('failed', e, flush=True)",
      ].join('\n'),
      { busyTimeoutMs: 10_000, timeoutMs: 120_000 },
    );
    await big.waitForLine('committing', 60_000);
    await poll(
      async () => ((await readdir(old.node.ltxDir(DB))).includes(tmpName) ? true : undefined),
      `${tmpName} on ${old.name}`,
      60_000,
      1,
    );
    const promote = await fetch(`${target.url}/promote`, { method: 'POST', signal: AbortSignal.timeout(60_000) });
    const out = await big.exited;
    expect(promote.status, await promote.clone().text()).toBe(200);
    expect(await cluster.findPrimary()).toBe(target);
    await expectIdentical([old, target, n2]);
    // The commit was past its commit point (its LTX file was being written)
    // when the old primary stepped down: it is acknowledged, and it must
    // be on the new primary.
    expect(out.stdout).toMatch(/acknowledged/);
    expect((await ids(target)).has(20001), 'an acknowledged commit must survive the handoff').toBe(true);
    expect(old.logged(/resnapshot replaces/)).toEqual([]);
  });

  it('SIGKILL of the primary under a write load: a candidate takes over within TTL + lock-delay + 1 s, writes resume there, the old node rejoins and converges', async () => {
    const n2 = cluster.node(2);
    // n1: the primary to kill; n0: the other candidate.
    const n1 = await cluster.findPrimary();
    const n0 = otherCandidate(n1);
    const reader = new Reader(n2.path(DB));
    await reader.started();
    const writer = new Writer([n1.path(DB), n0.path(DB)], { rate: 100, firstID: 5001 });
    let summary: ReaderSummary;
    let res;
    let takeoverMs: number;
    let afterExpiryMs: number | null = null;
    try {
      await writer.waitForLine(/^ok 5100 /);
      const session = consul.kv(KEY)!.session;
      const killedAt = Date.now();
      await n1.node.kill();
      // Consul reaps the dead primary's session after its TTL, then holds the key for lock-delay.
      const expiresAt = consul.session(session)?.expiresAt ?? null;
      await poll(async () => ((await n0.info(1000)).isPrimary ? true : undefined), 'node0 to become primary', 30_000, 50);
      takeoverMs = Date.now() - killedAt;
      afterExpiryMs = expiresAt === null ? null : Date.now() - expiresAt;
      // Writes resume on node0.
      const first = await writer.waitForLine(/^ok \d+ 1 /, 20_000);
      const firstID = Number(first.split(' ')[1]);
      await writer.waitForLine(new RegExp(`^ok ${firstID + 100} `), 20_000);
      res = await writer.stop();
    } finally {
      summary = await reader.stop();
      writer.kill();
    }
    expect(takeoverMs, `takeover took ${takeoverMs} ms`).toBeLessThanOrEqual(TTL_MS + LOCK_DELAY_MS + 1000);
    if (afterExpiryMs !== null)
      expect(afterExpiryMs, `takeover ${afterExpiryMs} ms after the session expired`).toBeLessThanOrEqual(LOCK_DELAY_MS + 1000);
    expect(summary.torn).toEqual([]);
    expect(leaseHolder()).toBe(n0.name);
    expect(await n2.primaryFile()).toBe(n0.name);

    // The old primary comes back as a replica of node0 and converges.
    await n1.start();
    expect(await cluster.findPrimary()).toBe(n0);
    await expectIdentical([n0, n1, n2]);
    const have = await ids(n0);
    const onNew = [...res.committed].filter(([, target]) => target === 1).map(([id]) => id);
    expect(onNew.length).toBeGreaterThan(100);
    expect(
      onNew.filter((id) => !have.has(id)),
      'writes acknowledged by the new primary',
    ).toEqual([]);
    // Writes the old primary acknowledged but never streamed are gone from
    // the cluster; if there were any, node1 re-snapshotted and kept them aside.
    const onOld = [...res.committed].filter(([, target]) => target === 0).map(([id]) => id);
    const lost = onOld.filter((id) => !have.has(id));
    if (lost.length > 0) {
      expect(n1.logged(/resnapshot replaces/).length).toBeGreaterThan(0);
      expect((await quarantined(n1, DB)).length).toBeGreaterThan(0);
    }
    console.log(
      `failover: takeover ${takeoverMs} ms after the kill, ${afterExpiryMs} ms after the session expired; ${onOld.length} writes on the old primary, ${lost.length} of them unreplicated at the kill`,
    );
  });

  it('split brain: the old primary writes while cut off, dies, another node takes over and writes; on restart its unreplicated transactions go to quarantine with their TXIDs logged', async () => {
    const n2 = cluster.node(2);
    // n0: the primary that gets cut off; n1: the candidate that takes over.
    const n0 = await cluster.findPrimary();
    const n1 = otherCandidate(n0);
    const common = await cluster.waitConverged(DB);
    const commonTXID = BigInt(`0x${common.split('/')[0]!}`);
    // Cut node0 off: its replicas go away.
    await n1.node.stop();
    await n2.node.stop();
    const orphan = new Writer([n0.path(DB)], { rate: 0, total: 10, firstID: 9001 });
    const orphanRes = await orphan.result();
    expect(orphanRes.committed.size).toBe(10);
    const orphanPos = await n0.position(DB);
    expect(BigInt(`0x${orphanPos!.split('/')[0]!}`)).toBe(commonTXID + 10n);
    await n0.node.kill();

    // node1 comes back, waits out node0's session and lock-delay, takes over and writes.
    await n1.start();
    await cluster.findPrimary({ among: [n1], timeoutMs: TTL_MS + LOCK_DELAY_MS + 10_000 });
    const other = new Writer([n1.path(DB)], { rate: 0, total: 4, firstID: 9501 });
    expect((await other.result()).committed.size).toBe(4);
    await n2.start();
    await cluster.waitConverged(DB, { nodes: [n1, n2] });

    // node0 restarts: it is ahead of node1 on another history.
    await n0.start();
    expect(await cluster.findPrimary()).toBe(n1);
    await expectIdentical([n0, n1, n2]);
    const have = await ids(n0);
    expect([...orphanRes.committed.keys()].filter((id) => have.has(id))).toEqual([]);
    for (let id = 9501; id <= 9504; id++) expect(have.has(id)).toBe(true);

    // The orphaned transactions are in quarantine, as verified LTX files.
    const q = await quarantined(n0, DB);
    expect(q.length).toBe(1);
    const files = q[0]!.files.filter((f) => parseLtxFilename(f) !== null);
    for (let t = commonTXID + 1n; t <= commonTXID + 10n; t++) {
      expect(
        files.some((f) => parseLtxFilename(f)!.minTXID <= t && t <= parseLtxFilename(f)!.maxTXID),
        `TXID ${t} quarantined`,
      ).toBe(true);
    }
    for (const f of files) await verifyLtxFile(`${q[0]!.dir}/${f}`, { strict: true });
    const warn = n0.logged(/resnapshot replaces/);
    expect(warn.length).toBe(1);
    expect(warn[0]!['movedTo']).toBe(q[0]!.dir);
    const [from, to] = String(warn[0]!['discarded'])
      .split('..')
      .map((x) => BigInt(`0x${x}`));
    expect(from! <= commonTXID + 1n && to! >= commonTXID + 10n, `logged range ${String(warn[0]!['discarded'])}`).toBe(true);
  });

  it('the non-candidate never became primary', () => {
    expect(node2Primary).toEqual([]);
  });
});
