import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyLtxFile } from '../../src/ltx/index.js';
import { ConsulTestDouble } from '../doubles/consul-double.js';
import { Cluster, type ClusterNode } from '../helpers/cluster.js';
import { WireReader, encodePosMapByHand, ltxPostApply, parseLtxHeaderByHand, type WireFrame } from './wire.js';

/*
 * A Go-LiteFS-compatible wire check: a /stream client written in this test
 * from the documented frame format (test/cluster/wire.ts, not
 * src/http/protocol) speaks h2c with prior knowledge to a real primary
 * daemon, as a LiteFS v0.5 replica would.
 */

const DB = 'db';
const CLIENT_ID = '00000000000000AB';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

interface Connected {
  status: number;
  headers: http2.IncomingHttpHeaders;
  reader: WireReader;
  req: http2.ClientHttp2Stream;
  text(): Promise<string>;
}

/** POST /stream with a hand-encoded position map. */
async function connect(
  node: ClusterNode,
  posMap: Buffer,
  headers: Record<string, string> = { 'litefs-id': CLIENT_ID },
): Promise<Connected> {
  const session = http2.connect(node.url);
  session.on('error', () => undefined);
  cleanups.push(async () => {
    session.destroy();
  });
  const req = session.request({ ':method': 'POST', ':path': '/stream', ...headers });
  const reader = new WireReader(req);
  req.end(posMap);
  const h = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  return {
    status: Number(h[':status']),
    headers: h,
    reader,
    req,
    text: async () => {
      const parts: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) parts.push(c);
      return Buffer.concat(parts).toString('utf8');
    },
  };
}

function parsePos(p: string): { txid: bigint; checksum: bigint } {
  const [t, c] = p.split('/');
  return { txid: BigInt(`0x${t!}`), checksum: BigInt(`0x${c!}`) };
}

/** Checks one LTX frame by hand and with the verifier; returns its header and post-apply checksum. */
async function checkLtx(f: WireFrame): Promise<{ minTXID: bigint; maxTXID: bigint; preApply: bigint; postApply: bigint }> {
  if (f.type !== 'ltx') throw new Error(`expected an LTX frame, got ${f.type}`);
  expect(f.name).toBe(DB);
  expect(f.chunks).toBeGreaterThan(0);
  // LiteFS sends 0 ("unknown"); a non-zero size must be exact.
  if (f.size !== 0n) expect(f.size).toBe(BigInt(f.body.length));
  const h = parseLtxHeaderByHand(f.body);
  expect(h.magic).toBe('LTX1');
  expect(h.pageSize).toBe(4096);
  expect(h.flags & ~1).toBe(0);
  const v = await verifyLtxFile(new Uint8Array(f.body), { strict: true });
  expect(v.header.maxTXID).toBe(h.maxTXID);
  return { minTXID: h.minTXID, maxTXID: h.maxTXID, preApply: h.preApply, postApply: ltxPostApply(f.body) };
}

function expectHeartbeatNow(f: WireFrame): void {
  expect(f.type).toBe('heartbeat');
  if (f.type === 'heartbeat') expect(Math.abs(Number(f.ms) - Date.now())).toBeLessThan(10_000);
}

describe('a hand-built LiteFS v0.5 /stream client against our primary (h2c)', () => {
  it('gets a snapshot, READY and HEARTBEAT, then each new transaction as a chunked LTX frame; positions, divergence, errors and END', async () => {
    const cluster = await Cluster.create({ size: 1, lease: { type: 'static' } });
    cleanups.push(() => cluster.destroy());
    await cluster.start();
    const p = cluster.node(0);
    const w = await p.sql(DB, 'PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(100000));');
    expect(w.code, w.stderr).toBe(0);
    const start = parsePos((await p.position(DB))!);
    const primaryID = (await p.info()).nodeID;

    // 1. An empty position map: a snapshot of everything, READY, HEARTBEAT.
    const c1 = await connect(p, encodePosMapByHand([]));
    expect(c1.status).toBe(200);
    expect(c1.headers['litefs-id']).toBe(primaryID);
    expect(String(c1.headers['litefs-id'])).toMatch(/^[0-9A-F]{16}$/);
    const snap = await checkLtx((await c1.reader.next())!);
    expect(snap).toEqual({ minTXID: 1n, maxTXID: start.txid, preApply: 0n, postApply: start.checksum });
    expect((await c1.reader.next())?.type).toBe('ready');
    expectHeartbeatNow((await c1.reader.next())!);

    // 2. A new transaction arrives as one incremental LTX frame.
    expect((await p.sql(DB, 'INSERT INTO t VALUES (2);')).code).toBe(0);
    const next = parsePos((await p.position(DB))!);
    expect(next.txid).toBe(start.txid + 1n);
    const { frame, skipped } = await c1.reader.until((f) => f.type === 'ltx');
    expect(skipped.every((f) => f.type === 'heartbeat' || f.type === 'hwm')).toBe(true);
    expect(await checkLtx(frame)).toEqual({ minTXID: next.txid, maxTXID: next.txid, preApply: start.checksum, postApply: next.checksum });
    // 3. Idle: a heartbeat about every second.
    const hb = await c1.reader.until((f) => f.type === 'heartbeat', 3000);
    expectHeartbeatNow(hb.frame);
    expect(hb.skipped.filter((f) => f.type === 'ltx')).toEqual([]);
    c1.req.close();

    // 4. Already at the primary's position: no LTX, just READY.
    const c2 = await connect(p, encodePosMapByHand([{ name: DB, txid: next.txid, checksum: next.checksum }]));
    expect(c2.status).toBe(200);
    expect((await c2.reader.next())?.type).toBe('ready');
    c2.req.close();

    // 5. One transaction behind: exactly that incremental.
    const c3 = await connect(p, encodePosMapByHand([{ name: DB, txid: start.txid, checksum: start.checksum }]));
    expect(await checkLtx((await c3.reader.next())!)).toEqual({
      minTXID: next.txid,
      maxTXID: next.txid,
      preApply: start.checksum,
      postApply: next.checksum,
    });
    expect((await c3.reader.next())?.type).toBe('ready');
    c3.req.close();

    // 6. Same TXID, another checksum; and a TXID ahead of the primary: snapshots.
    for (const pos of [
      { txid: next.txid, checksum: next.checksum ^ 0x1234n },
      { txid: next.txid + 5n, checksum: next.checksum },
    ]) {
      const c = await connect(p, encodePosMapByHand([{ name: DB, ...pos }]));
      expect(await checkLtx((await c.reader.next())!)).toEqual({ minTXID: 1n, maxTXID: next.txid, preApply: 0n, postApply: next.checksum });
      expect((await c.reader.next())?.type).toBe('ready');
      c.req.close();
    }
    expect(p.logged(/replica diverged from this primary/).length).toBe(2);

    // 7. Refusals: HTTP/1.1 (426), no or bad Litefs-Id (400), our own ID (400).
    const h1 = await fetch(`${p.url}/stream`, { method: 'POST', body: encodePosMapByHand([]) });
    expect(h1.status).toBe(426);
    expect(h1.headers.get('litefs-id')).toBe(primaryID);
    expect((await connect(p, encodePosMapByHand([]), {})).status).toBe(400);
    expect((await connect(p, encodePosMapByHand([]), { 'litefs-id': 'not-hex' })).status).toBe(400);
    const self = await connect(p, encodePosMapByHand([]), { 'litefs-id': primaryID });
    expect(self.status).toBe(400);
    expect(await self.text()).toMatch(/cannot connect to self/);
    // A garbage position map.
    const bad = await connect(p, Buffer.from([0, 0, 0, 5, 0xff]));
    expect(bad.status).toBe(400);

    // 8. The primary shuts down: END, then the end of the stream.
    const c4 = await connect(p, encodePosMapByHand([{ name: DB, txid: next.txid, checksum: next.checksum }]));
    expect((await c4.reader.next())?.type).toBe('ready');
    const stopping = p.node.stop();
    const end = await c4.reader.until((f) => f.type === 'end', 10_000);
    expect(end.skipped.every((f) => f.type === 'heartbeat')).toBe(true);
    expect(await c4.reader.next(10_000)).toBeNull();
    await stopping;
  });

  it('HANDOFF carries the Consul lease ID to the replica the primary hands off to', async () => {
    const consul = await ConsulTestDouble.start({ ttlMultiplier: 1 });
    cleanups.push(() => consul.close());
    const cluster = await Cluster.create({ size: 1, lease: { type: 'consul', url: consul.url, key: 'litefs/primary' } });
    cleanups.push(() => cluster.destroy());
    await cluster.start();
    const p = await cluster.findPrimary();
    const session = consul.kv('litefs/primary')!.session;
    expect(session).not.toBe('');
    const c = await connect(p, encodePosMapByHand([]));
    expect((await c.reader.next())?.type).toBe('ready');
    // Only a connected replica can be handed the lease.
    expect((await fetch(`${p.url}/handoff?nodeID=00000000000000CD`, { method: 'POST' })).status).toBe(400);
    const r = await fetch(`${p.url}/handoff?nodeID=${CLIENT_ID}`, { method: 'POST' });
    expect(r.status, await r.clone().text()).toBe(200);
    const { frame } = await c.reader.until((f) => f.type === 'handoff', 10_000);
    expect(frame).toEqual({ type: 'handoff', leaseID: session });
    // The primary stepped down without releasing the lease: the session
    // still holds the key, now for whoever was handed it.
    expect((await p.info()).isPrimary).toBe(false);
    expect(consul.kv('litefs/primary')!.session).toBe(session);
  });
});
