import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/lease/etcd-client.js';
import { EtcdRequestError, parseEtcdEndpoints } from '../../src/lease/index.js';
import { destroyAllEtcd, EtcdCluster } from '../helpers/etcd.js';

/*
 * The v3 JSON gateway client against real etcd processes (one member, or
 * three for member failures).
 */

const clients: EtcdClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await destroyAllEtcd();
});

function client(endpoints: string[], timeoutMs = 2_000): EtcdClient {
  const c = new EtcdClient(endpoints, timeoutMs);
  clients.push(c);
  return c;
}

/** A loopback port nobody listens on: connections are refused at once. */
async function deadEndpoint(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('EtcdClient', () => {
  it('ranges, creates only if absent, binds keys to leases, keeps them alive and revokes them', async () => {
    const etcd = await EtcdCluster.start();
    const c = client(etcd.endpoints);
    expect((await c.range('k/ü')).kv).toBeNull();
    const lease = await c.leaseGrant(3);
    expect(lease.ttlSeconds).toBe(3);
    const create = await c.txn(
      [{ key: 'k/ü', target: 'CREATE', createRevision: 0n }],
      [{ put: { key: 'k/ü', value: '{"v":"ü"}', lease: lease.id } }],
      [{ range: { key: 'k/ü' } }],
    );
    expect(create.succeeded).toBe(true);
    const again = await c.txn(
      [{ key: 'k/ü', target: 'CREATE', createRevision: 0n }],
      [{ put: { key: 'k/ü', value: 'other' } }],
      [{ range: { key: 'k/ü' } }],
    );
    expect(again.succeeded).toBe(false);
    expect(again.ranges[0]).toMatchObject({ key: 'k/ü', value: '{"v":"ü"}', lease: lease.id, createRevision: create.revision });
    const { kv, revision } = await c.range('k/ü');
    expect(kv?.value).toBe('{"v":"ü"}');
    expect(revision).toBe(create.revision);
    // Guarded on the lease: only the holder's lease may rewrite the key.
    const other = await c.leaseGrant(3);
    expect((await c.txn([{ key: 'k/ü', target: 'LEASE', lease: other.id }], [{ put: { key: 'k/ü', value: 'x' } }], [])).succeeded).toBe(
      false,
    );
    expect(
      (await c.txn([{ key: 'k/ü', target: 'LEASE', lease: lease.id }], [{ put: { key: 'k/ü', value: 'y', lease: lease.id } }], []))
        .succeeded,
    ).toBe(true);

    expect(await c.leaseKeepAlive(lease.id)).toBe(3);
    expect(await c.leaseRevoke(lease.id)).toBe(true);
    expect((await c.range('k/ü')).kv).toBeNull();
    expect(await c.leaseKeepAlive(lease.id)).toBe(0);
    expect(await c.leaseRevoke(lease.id)).toBe(false);
  });

  it('grants at least etcd’s minimum TTL (2s with the default election timeout)', async () => {
    const etcd = await EtcdCluster.start();
    expect((await client(etcd.endpoints).leaseGrant(1)).ttlSeconds).toBe(2);
  });

  it('streams puts and deletes of one key from a revision until aborted', async () => {
    const etcd = await EtcdCluster.start();
    const c = client(etcd.endpoints);
    const start = (await c.range('w')).revision + 1n;
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const events of c.watch('w', start, ac.signal)) {
        for (const e of events) seen.push(`${e.type} ${e.kv.value}`);
        if (seen.length >= 3) ac.abort();
      }
    })();
    await c.txn([], [{ put: { key: 'w', value: 'a' } }], []);
    await c.txn([], [{ put: { key: 'other', value: 'x' } }], []);
    await c.txn([], [{ put: { key: 'w', value: 'b' } }], []);
    const lease = await c.leaseGrant(5);
    await c.txn([], [{ put: { key: 'w', value: 'c', lease: lease.id } }], []);
    await c.leaseRevoke(lease.id);
    await done;
    expect(seen).toEqual(['PUT a', 'PUT b', 'PUT c']);
    // From an old revision, the history is replayed (the delete included).
    const replay: string[] = [];
    const ac2 = new AbortController();
    for await (const events of c.watch('w', start, ac2.signal)) {
      for (const e of events) replay.push(e.type);
      if (replay.length >= 4) ac2.abort();
    }
    expect(replay).toEqual(['PUT', 'PUT', 'PUT', 'DELETE']);
  });

  it('fails over to the next endpoint when one refuses connections', async () => {
    const etcd = await EtcdCluster.start();
    const dead = await deadEndpoint();
    const c = client([dead, ...etcd.endpoints]);
    await c.txn([], [{ put: { key: 'f', value: '1' } }], []);
    expect((await c.range('f')).kv?.value).toBe('1');
    const err = await client([dead])
      .range('f')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdRequestError);
    expect((err as EtcdRequestError).code).toBe('ERR_LEASE_ETCD');
    expect((err as EtcdRequestError).message).toContain(dead);
  });

  it('keeps working through a three-member cluster while one member is down or hung', async () => {
    const etcd = await EtcdCluster.start({ members: 3 });
    const c = client(etcd.endpoints, 500);
    const lease = await c.leaseGrant(5);
    await c.txn([], [{ put: { key: 'm', value: 'v', lease: lease.id } }], []);
    // A hung follower (stopped, sockets open) costs one attempt timeout.
    // (A hung leader stalls keep-alives everywhere until the others elect a
    // new one: the renewal loop's retries cover that.)
    const leader = await etcd.leaderIndex();
    const [follower, other] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    const hung = new EtcdClient([etcd.endpoints[follower]!, etcd.endpoints[leader]!], 500);
    clients.push(hung);
    etcd.member(follower).freeze(true);
    try {
      expect(await hung.leaseKeepAlive(lease.id)).toBe(5);
      expect((await hung.range('m')).kv?.value).toBe('v');
    } finally {
      etcd.member(follower).freeze(false);
    }
    // A member that is gone: nothing waits at all.
    await etcd.member(other).stop('SIGKILL');
    for (let i = 0; i < 5; i++) expect(await c.leaseKeepAlive(lease.id)).toBe(5);
    expect((await c.range('m')).kv?.lease).toBe(lease.id);
  });

  it('does not try other members after a definite answer', async () => {
    const etcd = await EtcdCluster.start();
    const c = client([...etcd.endpoints, ...etcd.endpoints.map((e) => e.replace('127.0.0.1', 'localhost'))]);
    const err = await c.range('').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdRequestError);
    expect((err as EtcdRequestError).status).toBe(400);
    expect((err as EtcdRequestError).message).toContain('key is not provided');
    expect((err as EtcdRequestError).attempts).toHaveLength(1);
  });
});

describe('parseEtcdEndpoints', () => {
  it('accepts http(s)://host:port and rejects anything else', () => {
    expect(parseEtcdEndpoints(['http://a:2379', 'https://b:2379/', 'http://a:2379'])).toEqual(['http://a:2379', 'https://b:2379']);
    for (const bad of ['a:2379', 'ftp://a', 'http://a:2379/v3', 'http://u:p@a:2379'])
      expect(() => parseEtcdEndpoints([bad]), bad).toThrow(/etcd endpoint/);
    expect(() => parseEtcdEndpoints([])).toThrow(/at least one endpoint/);
  });
});
