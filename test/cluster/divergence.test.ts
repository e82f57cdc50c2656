import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLtxFilename } from '../../src/ltx/index.js';
import { Cluster, WORKLOAD_SCHEMA, Writer, integrityCheck, quarantined, type ClusterNode } from '../helpers/cluster.js';

/*
 * Two nodes, static lease: node0 primary, node1 replica. To give node1 a
 * history of its own, it is restarted for a while as a standalone primary
 * (its config rewritten), writes there, and is then brought back as
 * node0's replica. The primary must notice each kind of divergence on
 * /stream (same TXID with another checksum, TXID ahead, next LTX whose
 * pre-apply checksum does not match) and send a snapshot, and node1 must
 * move the transactions it wrote on the side into quarantine.
 */

const DB = 'db';
let cluster: Cluster;
let nextID = 1;

beforeAll(async () => {
  cluster = await Cluster.create({ size: 2, lease: { type: 'static' }, debug: true });
  await cluster.start();
  const r = await cluster.node(0).sql(DB, WORKLOAD_SCHEMA);
  expect(r.code, r.stderr).toBe(0);
  await write(cluster.node(0), 5);
  await cluster.waitConverged(DB);
});

afterAll(async () => {
  await cluster?.destroy();
});

async function write(node: ClusterNode, n: number): Promise<void> {
  const w = new Writer([node.path(DB)], { rate: 0, total: n, firstID: nextID });
  nextID += n;
  const r = await w.result();
  expect(r.errors).toEqual([]);
  expect(r.committed.size).toBe(n);
}

function txidOf(pos: string | null): bigint {
  return BigInt(`0x${pos!.split('/')[0]!}`);
}

/** Restarts node1 as a primary of its own, writes `n` transactions there, stops it. */
async function sideHistory(n: number): Promise<string> {
  const n1 = cluster.node(1);
  await n1.node.stop();
  await n1.setCandidate(true);
  await n1.start();
  await write(n1, n);
  const pos = (await n1.position(DB))!;
  await n1.node.stop();
  await n1.setCandidate(false);
  return pos;
}

/** Brings node1 back as a replica; returns the primary's snapshot log lines for it. */
async function rejoin(): Promise<Record<string, unknown>[]> {
  const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
  await n1.start();
  const pos = await cluster.waitConverged(DB);
  expect(await n1.fileChecksum(DB)).toBe(pos.split('/')[1]);
  expect(await integrityCheck(n1, DB)).toBe('ok');
  const id = (await n1.info()).nodeID;
  return n0.logged(/^(sent snapshot|replica diverged from this primary; sending a snapshot)$/).filter((l) => l['replica'] === id);
}

async function expectQuarantined(round: number, txids: { from: bigint; to: bigint }): Promise<void> {
  const q = await quarantined(cluster.node(1), DB);
  expect(q.length).toBe(round);
  const files = q[round - 1]!.files.map((f) => parseLtxFilename(f)).filter((f) => f !== null);
  for (let t = txids.from; t <= txids.to; t++) {
    expect(
      files.some((f) => f!.minTXID <= t && t <= f!.maxTXID),
      `TXID ${t} in quarantine`,
    ).toBe(true);
  }
  const warns = cluster.node(1).logged(/resnapshot replaces/);
  expect(warns.length).toBe(round);
  expect(warns[round - 1]!['movedTo']).toBe(q[round - 1]!.dir);
}

describe('divergence on /stream', () => {
  it('a replica that was away catches up with LTX files, without a snapshot, while they are retained', async () => {
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    await n1.node.stop();
    await write(n0, 3);
    const lines = await rejoin();
    expect(lines).toEqual([]);
    expect(await quarantined(n1, DB)).toEqual([]);
  });

  it('same TXID, different checksum: the replica gets a snapshot and its own transactions go to quarantine', async () => {
    const n0 = cluster.node(0);
    const common = txidOf(await n0.position(DB));
    const side = await sideHistory(4);
    await write(n0, 4);
    const primaryPos = (await n0.position(DB))!;
    expect(txidOf(side)).toBe(txidOf(primaryPos));
    expect(side).not.toBe(primaryPos);
    const lines = await rejoin();
    expect(lines.map((l) => l['msg'])).toEqual(['replica diverged from this primary; sending a snapshot', 'sent snapshot']);
    await expectQuarantined(1, { from: common + 1n, to: common + 4n });
  });

  it('replica ahead of the primary: a snapshot', async () => {
    const n0 = cluster.node(0);
    const common = txidOf(await n0.position(DB));
    const side = await sideHistory(6);
    await write(n0, 2);
    expect(txidOf(side)).toBeGreaterThan(txidOf(await n0.position(DB)));
    const lines = await rejoin();
    expect(lines.map((l) => l['msg'])).toEqual(['replica diverged from this primary; sending a snapshot', 'sent snapshot']);
    await expectQuarantined(2, { from: common + 1n, to: common + 6n });
  });

  it("replica behind on another history: the next LTX file's pre-apply checksum does not match, so a snapshot", async () => {
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    const common = txidOf(await n0.position(DB));
    const side = await sideHistory(1);
    await write(n0, 3);
    expect(txidOf(side)).toBeLessThan(txidOf(await n0.position(DB)));
    const lines = await rejoin();
    expect(lines.map((l) => l['msg'])).toEqual(['sent snapshot']);
    await expectQuarantined(3, { from: common + 1n, to: common + 1n });
    // Its LTX history now starts with the snapshot.
    const names = (await readdir(n1.node.ltxDir(DB))).map((f) => parseLtxFilename(f)).filter((f) => f !== null);
    expect(names[0]!.minTXID).toBe(1n);
  });
});
