import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/lease/etcd-client.js';
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
import { destroyAllEtcd, EtcdCluster } from '../helpers/etcd.js';
import { overlappingTerms, primaryTerms } from '../helpers/roles.js';

/*
 * Three `litefs mount` daemons, all candidates, electing their primary on a
 * real three-member etcd cluster with a 2 s lease TTL. The tests share the
 * cluster and run in order: replication, promote/handoff, SIGKILL of the
 * primary under a write load, SIGTERM (the lease is revoked at once), the
 * loss of an etcd member, and finally a check over every node's log that
 * no two nodes ever accepted writes at the same moment.
 */

const DB = 'db';
const KEY = 'litefs/primary';
const TTL_MS = 2_000;

let etcd: EtcdCluster;
let client: EtcdClient;
let cluster: Cluster;
const killedAt = new Map<string, number[]>();

beforeAll(async () => {
  etcd = await EtcdCluster.start({ members: 3 });
  client = new EtcdClient(etcd.endpoints, 2_000);
  cluster = await Cluster.create({
    lease: { type: 'etcd', endpoints: etcd.endpoints, key: KEY, ttl: `${TTL_MS / 1000}s` },
    // A short reconnect delay, as a failover-minded deployment would use.
    reconnectDelay: '200ms',
  });
});

afterAll(async () => {
  await cluster?.destroy();
  await client?.close();
  await destroyAllEtcd();
});

async function holder(): Promise<{ hostname: string; lease: string } | null> {
  const { kv } = await client.range(KEY);
  return kv === null ? null : { hostname: (JSON.parse(kv.value) as { hostname: string }).hostname, lease: kv.lease };
}

async function kill(n: ClusterNode): Promise<number> {
  const at = Date.now();
  killedAt.set(n.name, [...(killedAt.get(n.name) ?? []), at]);
  await n.node.kill();
  return at;
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

async function expectIdentical(nodes: ClusterNode[]): Promise<void> {
  const pos = await cluster.waitConverged(DB, { nodes, timeoutMs: 30_000 });
  const want = pos.split('/')[1];
  for (const n of nodes) {
    expect(await n.fileChecksum(DB), `${n.name} database file checksum`).toBe(want);
    expect(await integrityCheck(n, DB), `${n.name} integrity_check`).toBe('ok');
  }
}

/** Runs a writer over every node's mount until it has committed `after` rows on a node other than `old`. */
function writerFor(first: number): Writer {
  return new Writer(
    cluster.nodes.map((n) => n.path(DB)),
    { rate: 100, firstID: first },
  );
}

describe('three nodes, etcd lease (three etcd members, TTL 2 s)', () => {
  it('elects a primary, publishes it in etcd and replicates to both replicas', async () => {
    const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await n0.start();
    expect(await cluster.findPrimary({ among: [n0] })).toBe(n0);
    await cluster.start([1, 2]);
    expect(await cluster.findPrimary()).toBe(n0);
    expect((await holder())?.hostname).toBe('node0');
    const schema = await n0.sql(DB, WORKLOAD_SCHEMA);
    expect(schema.code, schema.stderr).toBe(0);
    const w = new Writer([n0.path(DB)], { rate: 200, total: 100 });
    expect((await w.result()).committed.size).toBe(100);
    await expectIdentical([n0, n1, n2]);
    expect(await n1.primaryFile()).toBe('node0');
    expect(await n2.primaryFile()).toBe('node0');
    // A write on a replica is refused.
    const refused = await n1.sql(DB, 'INSERT INTO t(id) VALUES (-1);');
    expect(refused.stderr).toMatch(/readonly/i);
  });

  it('POST /promote hands the etcd lease to a replica under a write load; the lease ID moves with it and nothing acknowledged is lost', async () => {
    const old = await cluster.findPrimary();
    const target = cluster.nodes.find((n) => n !== old)!;
    const before = (await holder())!;
    const writer = writerFor(1001);
    await writer.waitForLine(/^ok 1030 /);
    const promote = await fetch(`${target.url}/promote`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
    expect(promote.status, await promote.clone().text()).toBe(200);
    await writer.waitForLine(new RegExp(`^ok \\d+ ${target.index} `));
    const res = await writer.stop();
    expect(await cluster.findPrimary()).toBe(target);
    const after = (await holder())!;
    expect(after.hostname).toBe(target.name);
    expect(after.lease).toBe(before.lease);
    expect(
      res.errors.every((e) => /readonly|disk I\/O|locked/i.test(e)),
      res.errors.join('\n'),
    ).toBe(true);
    await expectIdentical(cluster.nodes);
    const have = await ids(target);
    expect(
      [...res.committed.keys()].filter((id) => !have.has(id)),
      'acknowledged writes lost in the handoff',
    ).toEqual([]);
  });

  it('SIGKILL of the primary under a write load: another candidate accepts writes within TTL + 1 s; the old node rejoins as a replica', async () => {
    const victim = await cluster.findPrimary();
    const others = cluster.nodes.filter((n) => n !== victim);
    const reader = new Reader(others[0]!.path(DB));
    await reader.started();
    const writer = writerFor(5001);
    let summary: ReaderSummary;
    let takeoverMs: number;
    let res;
    let successor: ClusterNode;
    try {
      await writer.waitForLine(/^ok 5050 /);
      const at = await kill(victim);
      successor = await poll(
        async () => {
          for (const n of others) if ((await n.info(1000).catch(() => null))?.isPrimary === true) return n;
          return undefined;
        },
        'a new primary',
        30_000,
        25,
      );
      takeoverMs = Date.now() - at;
      const first = await writer.waitForLine(new RegExp(`^ok \\d+ ${successor.index} `), 20_000);
      await writer.waitForLine(new RegExp(`^ok ${Number(first.split(' ')[1]) + 50} `), 20_000);
      res = await writer.stop();
    } finally {
      summary = await reader.stop();
      writer.kill();
    }
    console.log(`etcd failover: a new primary ${takeoverMs} ms after SIGKILL (TTL ${TTL_MS} ms)`);
    expect(takeoverMs, `takeover took ${takeoverMs} ms`).toBeLessThanOrEqual(TTL_MS + 1_000);
    expect(summary.torn).toEqual([]);
    expect((await holder())?.hostname).toBe(successor.name);

    await victim.start();
    expect(await cluster.findPrimary()).toBe(successor);
    await expectIdentical(cluster.nodes);
    const have = await ids(successor);
    const onNew = [...res.committed].filter(([, t]) => t === successor.index).map(([id]) => id);
    expect(
      onNew.filter((id) => !have.has(id)),
      'writes acknowledged by the new primary',
    ).toEqual([]);
    // Writes the dead primary acknowledged but never streamed are not
    // silently gone: the old node moved them to quarantine when it rejoined.
    const lost = [...res.committed].filter(([id, t]) => t === victim.index && !have.has(id));
    if (lost.length > 0) {
      expect(victim.logged(/resnapshot replaces/).length).toBeGreaterThan(0);
      expect((await quarantined(victim, DB)).length).toBeGreaterThan(0);
    }
  });

  it('SIGTERM of the primary revokes its lease: a candidate takes over at once, long before the TTL could run out', async () => {
    const old = await cluster.findPrimary();
    const writer = writerFor(8001);
    let res;
    let sentAt = 0;
    try {
      await writer.waitForLine(/^ok 8030 /);
      sentAt = Date.now();
      await old.node.stop('SIGTERM');
      const successor = await cluster.findPrimary({ among: cluster.nodes.filter((n) => n !== old), replicasFollow: false });
      const became = successor.logged(/^this node is now the primary$/).at(-1)!;
      const handoffMs = Date.parse(String(became['time'])) - sentAt;
      console.log(`etcd SIGTERM handoff: new primary ${handoffMs} ms after the signal`);
      // Far below the 2 s TTL, so it was the revoke, not the expiry. (The
      // benchmark reports the figure; this only proves the mechanism.)
      expect(handoffMs).toBeLessThan(TTL_MS);
      await writer.waitForLine(new RegExp(`^ok \\d+ ${successor.index} `), 20_000);
      res = await writer.stop();
    } finally {
      writer.kill();
    }
    await old.start();
    await cluster.findPrimary();
    await expectIdentical(cluster.nodes);
    // A clean shutdown loses nothing: the old primary stops writing, lets
    // the replicas receive its last transactions, then releases the lease.
    const have = await ids(old);
    expect([...res.committed.keys()].filter((id) => !have.has(id))).toEqual([]);
    expect(await quarantined(old, DB)).toEqual([]);
  });

  it('losing an etcd member changes nothing: the primary keeps its lease through several TTLs and writes go on', async () => {
    const primary = await cluster.findPrimary();
    const before = (await holder())!;
    // A follower: killing the Raft leader costs an election (about a second
    // with etcd's defaults), which a 2 s TTL may not outlast.
    const follower = ((await etcd.leaderIndex()) + 1) % 3;
    await etcd.member(follower).stop('SIGKILL');
    const w = new Writer([primary.path(DB)], { rate: 50, total: 3 * 50 * (TTL_MS / 1000), firstID: 12001 });
    const res = await w.result();
    expect(res.errors).toEqual([]);
    expect(await cluster.findPrimary()).toBe(primary);
    expect((await holder())!.lease).toBe(before.lease);
    expect(primary.logged(/no longer accepts writes/).filter((l) => Date.parse(String(l['time'])) > Date.now() - 10_000)).toEqual([]);
    await expectIdentical(cluster.nodes);
  });

  it('no two nodes ever accepted writes at the same moment', () => {
    const terms = cluster.nodes.flatMap((n) => primaryTerms(n, killedAt.get(n.name)));
    expect(terms.length).toBeGreaterThanOrEqual(4);
    expect(overlappingTerms(terms)).toEqual([]);
  });
});
