import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulTestDouble } from '../doubles/consul-double.js';
import {
  Cluster,
  WORKLOAD_SCHEMA,
  Writer,
  integrityCheck,
  poll,
  quarantined,
  type ClusterNode,
  type LeaseSpec,
  type WriterResult,
} from '../helpers/cluster.js';
import { destroyAllEtcd, EtcdCluster } from '../helpers/etcd.js';
import { TestNet } from '../helpers/netns.js';
import { overlappingTerms, primaryTerms } from '../helpers/roles.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { FENCE_LATENESS_MS } from '../../src/lease/index.js';

/*
 * Failover under network faults. Each of three candidate nodes runs in a
 * network namespace of its own (nsenter --net), joined by veth pairs to a
 * private bridge on which the lease store listens (etcd, or the Consul
 * double with sessions that expire after exactly their TTL and no
 * lock-delay: the fence alone must keep primaries apart). Faults are
 * nftables rules in a node's namespace (partition, random loss) and
 * delaying relays between each node and etcd (this kernel has no netem).
 *
 * What must hold: never two nodes accepting writes at the same moment
 * (from their logs, one clock), every replica converges to the same
 * checksum after healing, and an acknowledged write can only be missing if
 * the cut-off primary acknowledged it within the async-replication window
 * (from just before the fault to its fence), in which case its node moved
 * it to quarantine on rejoining.
 *
 * Needs root, iproute2, nftables and netns support: without them the tests
 * fail with the reason; they never skip.
 */

const DB = 'db';
const KEY = 'litefs/primary';
const TTL = '2s';
/** A write acknowledged this long before a fault may not have reached a replica yet (replication lag, with slack). */
const REPLICATION_SLACK_MS = 1_000;
/** How much later than the commit a client may timestamp its acknowledgement. */
const ACK_SLACK_MS = 100;

let net: TestNet;

beforeAll(async () => {
  net = await TestNet.create(3);
});

afterAll(async () => {
  await net?.destroy();
});

function nodeSpecs(extra: (i: number) => { etcdEndpoints?: string[] } = () => ({})) {
  return [0, 1, 2].map((i) => ({ host: net.ip(i), wrap: net.wrap(i), ...extra(i) }));
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

async function expectConverged(cluster: Cluster): Promise<void> {
  const pos = await cluster.waitConverged(DB, { timeoutMs: 60_000 }).catch((err: unknown) => {
    for (const n of cluster.nodes)
      console.log(
        `DIAG ${n.name} running=${n.running} exit=${JSON.stringify(n.node.exit)}\n${n.node
          .runLog()
          .split('\n')
          .filter((l) => !l.startsWith('{'))
          .slice(-30)
          .join('\n')}`,
      );
    throw err;
  });
  const want = pos.split('/')[1];
  for (const n of cluster.nodes) {
    if ((await n.fileChecksum(DB)) !== want) {
      const lines = n.node
        .logLines(true)
        .filter((l) => !/^(applied|sent|stream|fuse)/.test(String(l['msg'])) || /snapshot/.test(String(l['msg'])))
        .slice(-60);
      console.log(
        `MISMATCH ${n.name}:\n${lines.map((l) => `${String(l['time'])} ${String(l['level'])} ${String(l['msg'])} ${JSON.stringify({ ...l, time: undefined, msg: undefined, level: undefined }).slice(0, 300)}`).join('\n')}`,
      );
    }
  }
  for (const n of cluster.nodes) {
    expect(await n.fileChecksum(DB), `${n.name} database file checksum`).toBe(want);
    expect(await integrityCheck(n, DB), `${n.name} integrity_check`).toBe('ok');
  }
}

/**
 * Every acknowledged write is on the primary now, unless the node that
 * acknowledged it lost its term to the fence before streaming it (the
 * async-replication window): then the write was acknowledged during a term
 * of that node that ended fenced, no earlier than `since`, and that node
 * logged the re-snapshot and kept its transactions in quarantine.
 */
async function expectNoLostWrites(cluster: Cluster, res: WriterResult, since: number): Promise<number> {
  const primary = await cluster.findPrimary();
  const have = await ids(primary);
  const lost = [...res.committed].filter(([id]) => !have.has(id));
  const unexplained: string[] = [];
  for (const [id, target] of lost) {
    const node = cluster.node(target);
    const at = res.ackedAt.get(id) ?? NaN;
    // A commit that passed its check just before the fence completes
    // after it: FENCE_LATENESS_MS of the margin is there for it. The client
    // timestamps its acknowledgement a little later still.
    const terms = primaryTerms(node);
    const term = terms.find((t) => t.from - ACK_SLACK_MS <= at && at <= t.to + FENCE_LATENESS_MS + ACK_SLACK_MS);
    const ok = term !== undefined && term.reason.startsWith('fenced') && at >= since;
    if (!ok)
      unexplained.push(`id ${id} acknowledged by ${node.name} at ${new Date(at).toISOString()}; its terms: ${JSON.stringify(terms)}`);
  }
  expect(unexplained, 'acknowledged writes lost outside the async-replication window of a fenced primary').toEqual([]);
  for (const target of new Set(lost.map(([, t]) => t))) {
    const node = cluster.node(target);
    expect(node.logged(/resnapshot replaces/).length, `${node.name} re-snapshotted`).toBeGreaterThan(0);
    expect((await quarantined(node, DB)).length, `${node.name} quarantine`).toBeGreaterThan(0);
  }
  return lost.length;
}

/** The id of the next write `node` acknowledges. */
async function nextAckOn(writer: Writer, node: ClusterNode, timeoutMs = 30_000): Promise<number> {
  const line = await writer.waitForLine(new RegExp(`^ok \\d+ ${node.index} `), timeoutMs);
  return Number(line.split(' ')[1]);
}

/**
 * Cuts the primary off from everyone under a write load; another node must
 * take over, the cut-off one must refuse writes, and after healing it must
 * rejoin as a replica with everything converged.
 */
async function partitionThePrimary(cluster: Cluster, firstID: number): Promise<void> {
  const cut = await cluster.findPrimary();
  const others = cluster.nodes.filter((n) => n !== cut);
  const writer = new Writer(
    cluster.nodes.map((n) => n.path(DB)),
    { rate: 50, firstID },
  );
  let res: WriterResult;
  let idAtFault: number;
  let cutAt: number;
  try {
    await nextAckOn(writer, cut);
    idAtFault = await nextAckOn(writer, cut);
    cutAt = Date.now();
    await net.partition(cut.index);
    try {
      const successor = await poll(
        async () => {
          for (const n of others) if ((await n.info(1000).catch(() => null))?.isPrimary === true) return n;
          return undefined;
        },
        'a new primary after the partition',
        30_000,
        50,
      );
      console.log(`${cluster.opts.lease.type}: ${successor.name} is primary ${Date.now() - cutAt} ms after ${cut.name} was cut off`);
      // The cut-off node fenced itself: it says so, and refuses a write.
      const fenced = cut.logged(/^this node no longer accepts writes$/).filter((l) => Date.parse(String(l['time'])) >= cutAt);
      expect(fenced.length, `${cut.name} logged no step-down after the partition`).toBeGreaterThan(0);
      const refused = await cut.sql(DB, `INSERT INTO t(id, node) VALUES (${firstID - 1}, 'cut');`);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/readonly|disk I\/O/i);
      const resumed = await nextAckOn(writer, successor);
      await writer.waitForLine(new RegExp(`^ok ${resumed + 25} `), 30_000);
    } finally {
      await net.clear(cut.index);
    }
    // Healed: the old primary follows the new one.
    await cluster.findPrimary({ timeoutMs: 60_000 });
    await writer.waitForLine(new RegExp(`^ok ${idAtFault + 200} `), 30_000);
    res = await writer.stop();
  } finally {
    writer.kill();
  }
  expect(await cluster.findPrimary()).not.toBe(cut);
  const fencedAt = primaryTerms(cut).find((t) => t.to >= cutAt && t.from <= cutAt)?.to;
  const nextStart = Math.min(
    ...cluster.nodes
      .filter((n) => n !== cut)
      .flatMap((n) =>
        primaryTerms(n)
          .filter((t) => t.from >= cutAt)
          .map((t) => t.from),
      ),
  );
  console.log(`${cluster.opts.lease.type}: ${cut.name} fenced ${nextStart - (fencedAt ?? NaN)} ms before the next primary started`);
  await expectConverged(cluster);
  const lost = await expectNoLostWrites(cluster, res, cutAt - REPLICATION_SLACK_MS);
  console.log(`${cluster.opts.lease.type}: ${lost} writes acknowledged by ${cut.name} in the window were quarantined`);
}

async function startCluster(lease: LeaseSpec, extra?: (i: number) => { etcdEndpoints?: string[] }): Promise<Cluster> {
  const cluster = await Cluster.create({ lease, nodes: nodeSpecs(extra), reconnectDelay: '200ms', debug: process.env.NF_DEBUG === '1' });
  await cluster.start();
  const primary = await cluster.findPrimary();
  const schema = await primary.sql(DB, WORKLOAD_SCHEMA);
  expect(schema.code, schema.stderr).toBe(0);
  await cluster.waitConverged(DB);
  return cluster;
}

describe('etcd lease under network faults (one etcd on the test bridge, TTL 2 s)', () => {
  let etcd: EtcdCluster;
  let cluster: Cluster;
  const relays: TcpProxy[] = [];

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ host: net.hostIP });
    const m = etcd.member(0);
    // Each node reaches etcd through its own relay, where latency is added.
    for (let i = 0; i < 3; i++) relays.push(await TcpProxy.start({ host: m.host, port: m.clientPort }, net.hostIP));
    cluster = await startCluster({ type: 'etcd', endpoints: etcd.endpoints, key: KEY, ttl: TTL }, (i) => ({
      etcdEndpoints: [relays[i]!.url],
    }));
  });

  afterAll(async () => {
    await cluster?.destroy();
    for (const r of relays) await r.close();
    await destroyAllEtcd();
  });

  it('partitioning the primary from etcd and its replicas: it fences, another node takes over, and it rejoins after healing', async () => {
    await partitionThePrimary(cluster, 100_001);
  });

  it('latency to etcd and packet loss at the primary, then healing: writes go on, the cluster converges', async () => {
    const primary = await cluster.findPrimary();
    const writer = new Writer(
      cluster.nodes.map((n) => n.path(DB)),
      { rate: 50, firstID: 200_001 },
    );
    let res: WriterResult;
    let faultAt: number;
    try {
      await nextAckOn(writer, primary);
      faultAt = Date.now();
      for (const r of relays) r.setDelay(150);
      await net.loss(primary.index, 15);
      try {
        // Eight seconds of faults; the writer must still get writes through.
        const during = Number((await writer.waitForLine(/^ok /, 10_000)).split(' ')[1]);
        await new Promise((r) => setTimeout(r, 8_000));
        const later = Number((await writer.waitForLine(/^ok /, 30_000)).split(' ')[1]);
        expect(later).toBeGreaterThan(during);
      } finally {
        await net.clear(primary.index);
        for (const r of relays) r.setDelay(0);
      }
      const now = await cluster.findPrimary({ timeoutMs: 60_000 });
      const after = await nextAckOn(writer, now);
      await writer.waitForLine(new RegExp(`^ok ${after + 25} `), 30_000);
      res = await writer.stop();
    } finally {
      writer.kill();
    }
    await expectConverged(cluster);
    await expectNoLostWrites(cluster, res, faultAt - REPLICATION_SLACK_MS);
  });

  it('a primary that loses only etcd (its replicas still reach it) fences before the new primary starts', async () => {
    const cut = await cluster.findPrimary();
    const relay = relays[cut.index]!;
    const writer = new Writer(
      cluster.nodes.map((n) => n.path(DB)),
      { rate: 50, firstID: 300_001 },
    );
    let res: WriterResult;
    let faultAt: number;
    try {
      await nextAckOn(writer, cut);
      faultAt = Date.now();
      relay.setMode('blackhole');
      try {
        const successor = await cluster.findPrimary({
          among: cluster.nodes.filter((n) => n !== cut),
          replicasFollow: false,
          timeoutMs: 30_000,
        });
        await nextAckOn(writer, successor);
      } finally {
        relay.setMode('pass');
      }
      await cluster.findPrimary({ timeoutMs: 60_000 });
      res = await writer.stop();
    } finally {
      writer.kill();
    }
    await expectConverged(cluster);
    await expectNoLostWrites(cluster, res, faultAt - REPLICATION_SLACK_MS);
  });

  it('no two nodes ever accepted writes at the same moment', () => {
    const terms = cluster.nodes.flatMap((n) => primaryTerms(n));
    expect(terms.length).toBeGreaterThanOrEqual(3);
    expect(overlappingTerms(terms)).toEqual([]);
  });
});

describe('Consul double under network faults (TTL 2 s, expiry at exactly TTL, no lock-delay)', () => {
  let consul: ConsulTestDouble;
  let cluster: Cluster;

  beforeAll(async () => {
    consul = await ConsulTestDouble.start({ host: net.hostIP, ttlMultiplier: 1, sessionTTLMinMs: 1_000 });
    cluster = await startCluster({ type: 'consul', url: consul.url, key: KEY, ttl: TTL, lockDelay: '0s' });
  });

  afterAll(async () => {
    await cluster?.destroy();
    await consul?.close();
  });

  it('partitioning the primary from Consul and its replicas: it fences, another node takes over, and it rejoins after healing', async () => {
    await partitionThePrimary(cluster, 400_001);
  });

  it('no two nodes ever accepted writes at the same moment', () => {
    const terms = cluster.nodes.flatMap((n) => primaryTerms(n));
    expect(terms.length).toBeGreaterThanOrEqual(2);
    expect(overlappingTerms(terms)).toEqual([]);
  });
});
