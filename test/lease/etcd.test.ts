import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { EtcdClient } from '../../src/lease/etcd-client.js';
import {
  createLeaser,
  EtcdLeaser,
  isLeaseError,
  PrimaryExistsError,
  runRenewLoop,
  type EtcdLeaserOptions,
  type Lease,
  type PrimaryInfo,
} from '../../src/lease/index.js';
import { destroyAllEtcd, EtcdCluster, makeTestCertificates } from '../helpers/etcd.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/* The etcd leaser against real etcd: election, expiry, handoff, watch, fencing. */

const KEY = 'litefs/primary';
const leasers: EtcdLeaser[] = [];
const leases: Lease[] = [];
const proxies: TcpProxy[] = [];
let raw: EtcdClient | null = null;

afterEach(async () => {
  for (const l of leases.splice(0)) await l.close().catch(() => undefined);
  for (const l of leasers.splice(0)) await l.close();
  for (const p of proxies.splice(0)) await p.close();
  await raw?.close();
  raw = null;
  await destroyAllEtcd();
});

function leaser(etcd: EtcdCluster | string[], name: string, opts: Partial<EtcdLeaserOptions> = {}): EtcdLeaser {
  const l = new EtcdLeaser({
    endpoints: Array.isArray(etcd) ? etcd : etcd.endpoints,
    key: KEY,
    hostname: name,
    advertiseURL: `http://${name}:20202`,
    ttlMs: 2_000,
    requestTimeoutMs: 2_000,
    watchRetryMs: 100,
    ...opts,
  });
  leasers.push(l);
  return l;
}

async function acquire(l: EtcdLeaser): Promise<Lease> {
  const lease = await l.acquire();
  leases.push(lease);
  return lease;
}

function info(name: string): PrimaryInfo {
  return { hostname: name, advertiseURL: `http://${name}:20202` };
}

function rawClient(etcd: EtcdCluster): EtcdClient {
  raw = new EtcdClient(etcd.endpoints, 2_000);
  return raw;
}

/** Tries to acquire every 50 ms until it works; returns the lease and when (Date.now()). */
async function acquireWhenFree(l: EtcdLeaser, timeoutMs: number): Promise<{ lease: Lease; at: number }> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    try {
      const lease = await acquire(l);
      return { lease, at: Date.now() };
    } catch (err) {
      if (!isLeaseError(err, 'ERR_LEASE_PRIMARY_EXISTS')) throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${l.hostname} could not acquire within ${timeoutMs} ms`);
}

describe('EtcdLeaser', () => {
  it('acquires by creating the key with PrimaryInfo JSON bound to a fresh lease; a second candidate is refused and told who holds it', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    const b = leaser(etcd, 'node-b');
    await expect(a.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_NO_PRIMARY' });
    const lease = await acquire(a);
    expect(lease.id).toMatch(/^[1-9][0-9]*$/);
    expect(lease.ttlMs).toBe(2_000);
    const { kv } = await rawClient(etcd).range(KEY);
    expect(kv?.value).toBe('{"hostname":"node-a","advertise-url":"http://node-a:20202"}');
    expect(kv?.lease).toBe(lease.id);
    expect(await b.primaryInfo()).toEqual(info('node-a'));
    const err = await b.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrimaryExistsError);
    expect((err as PrimaryExistsError).primary).toEqual(info('node-a'));
    // The loser's unused lease was revoked, not left to expire.
    const leasesNow = await fetch(`${etcd.endpoints[0]!}/v3/lease/leases`, { method: 'POST', body: '{}' }).then(
      (r) => r.json() as Promise<{ leases?: { ID: string }[] }>,
    );
    expect((leasesNow.leases ?? []).map((x) => x.ID)).toEqual([lease.id]);
  });

  it('keeps the lease past its TTL while renewed; close revokes it so another candidate takes over at once', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    const b = leaser(etcd, 'node-b');
    const lease = await acquire(a);
    const ac = new AbortController();
    let renewals = 0;
    const loop = runRenewLoop(lease, {
      signal: ac.signal,
      onRenew: () => {
        if (++renewals === 4) ac.abort();
      },
    });
    expect(await loop).toEqual({ reason: 'aborted' });
    // Four renewals at TTL/2 = 1 s: two TTLs have passed.
    expect((await b.primaryInfo()).hostname).toBe('node-a');
    await lease.close();
    const t0 = Date.now();
    await acquire(b);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect((await a.primaryInfo()).hostname).toBe('node-b');
  });

  it('loses the key when renewals stop: etcd deletes it after the TTL and renew says ERR_LEASE_EXPIRED', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    const b = leaser(etcd, 'node-b');
    const lease = await acquire(a);
    const t0 = Date.now();
    const { at } = await acquireWhenFree(b, 10_000);
    // etcd's expiry checker runs every 500 ms: TTL .. TTL + ~1 s.
    expect(at - t0).toBeGreaterThanOrEqual(1_900);
    await expect(lease.renew()).rejects.toMatchObject({ code: 'ERR_LEASE_EXPIRED' });
  });

  it('renew fails with ERR_LEASE_EXPIRED when the key was deleted by hand, though the lease lives', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    const lease = await acquire(a);
    await fetch(`${etcd.endpoints[0]!}/v3/kv/deleterange`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from(KEY).toString('base64') }),
    });
    await expect(lease.renew()).rejects.toMatchObject({ code: 'ERR_LEASE_EXPIRED', message: expect.stringContaining('no longer bound') });
  });

  it('acquireExisting takes over a handed-off lease and rewrites the value; an expired lease ID is refused', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    const b = leaser(etcd, 'node-b');
    const lease = await acquire(a);
    const taken = await b.acquireExisting(lease.id);
    leases.push(taken);
    expect(taken.id).toBe(lease.id);
    const { kv } = await rawClient(etcd).range(KEY);
    expect(kv?.value).toBe('{"hostname":"node-b","advertise-url":"http://node-b:20202"}');
    expect(kv?.lease).toBe(lease.id);
    await taken.renew();
    await taken.close();
    await expect(a.acquireExisting(lease.id)).rejects.toMatchObject({ code: 'ERR_LEASE_EXPIRED' });
    // A live lease that does not hold the key cannot take it over.
    const c = await acquire(leaser(etcd, 'node-c'));
    const stray = await rawClient(etcd).leaseGrant(5);
    const err = await b.acquireExisting(stray.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrimaryExistsError);
    expect((err as PrimaryExistsError).primary?.hostname).toBe('node-c');
    await c.close();
  });

  it('watchPrimary yields the current primary, then each change as etcd streams it', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    const b = leaser(etcd, 'node-b');
    const r = leaser(etcd, 'replica', { candidate: false });
    const ac = new AbortController();
    const seen: (string | null)[] = [];
    const watching = (async () => {
      for await (const p of r.watchPrimary({ signal: ac.signal })) {
        seen.push(p?.hostname ?? null);
        if (seen.length === 4) ac.abort();
      }
    })();
    const until = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && seen.length < n; i++) await new Promise((res) => setTimeout(res, 10));
    };
    await until(1);
    const la = await acquire(a);
    await until(2);
    await la.close();
    await until(3);
    await acquire(b);
    await watching;
    expect(seen).toEqual([null, 'node-a', null, 'node-b']);
    await expect(r.acquire()).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_CANDIDATE' });
  });

  it('stores the cluster ID once under <key>/clusterid', async () => {
    const etcd = await EtcdCluster.start();
    const a = leaser(etcd, 'node-a');
    expect(await a.clusterID()).toBeNull();
    await a.setClusterID('LFSC0123456789ABCDEF');
    await leaser(etcd, 'node-b').setClusterID('LFSC0123456789ABCDEF');
    expect(await a.clusterID()).toBe('LFSC0123456789ABCDEF');
    await expect(a.setClusterID('LFSCFFFFFFFFFFFFFFFF')).rejects.toMatchObject({ code: 'ERR_LEASE_CLUSTER_ID_MISMATCH' });
    expect((await rawClient(etcd).range(`${KEY}/clusterid`)).kv?.value).toBe('LFSC0123456789ABCDEF');
  });

  it('survives the loss of a member of a three-member cluster: renewals and the watch carry on', async () => {
    const etcd = await EtcdCluster.start({ members: 3 });
    const a = leaser(etcd, 'node-a');
    const r = leaser(etcd, 'replica', { candidate: false });
    const lease = await acquire(a);
    const ac = new AbortController();
    const seen: (string | null)[] = [];
    const watching = (async () => {
      for await (const p of r.watchPrimary({ signal: ac.signal })) {
        seen.push(p?.hostname ?? null);
        if (p === null) ac.abort();
      }
    })();
    let fenced = false;
    const renewing = runRenewLoop(lease, { signal: ac.signal, onFence: () => (fenced = true) });
    // Kill the member both talk to first, and the leader if that is another one.
    await etcd.member(0).stop('SIGKILL');
    await new Promise((res) => setTimeout(res, 3_000));
    expect((await r.primaryInfo()).hostname).toBe('node-a');
    expect(fenced).toBe(false);
    await lease.close();
    await watching;
    expect(await renewing).toEqual({ reason: 'aborted' });
    expect(seen).toEqual(['node-a', null]);
  });

  it('fencing: a primary cut off from etcd stops trusting its lease before anyone else can acquire it', async () => {
    const etcd = await EtcdCluster.start();
    const url = new URL(etcd.endpoints[0]!);
    const proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) });
    proxies.push(proxy);
    const a = leaser([proxy.url], 'node-a', { requestTimeoutMs: 60_000 });
    const b = leaser(etcd, 'node-b');
    const lease = await acquire(a);
    let fencedAt: number | null = null;
    const renewing = runRenewLoop(lease, { signal: new AbortController().signal, onFence: () => (fencedAt = Date.now()) });
    await new Promise((res) => setTimeout(res, 1_200));
    // Every byte to and from node-a's etcd now vanishes; its renewal hangs.
    proxy.setMode('blackhole');
    const { at: acquiredAt } = await acquireWhenFree(b, 10_000);
    const result = await renewing;
    expect(result.reason).toBe('expired');
    expect(result.reason === 'expired' && isLeaseError(result.error, 'ERR_LEASE_FENCED')).toBe(true);
    expect(fencedAt).not.toBeNull();
    expect(fencedAt!, `fenced at ${fencedAt}, the other candidate acquired at ${acquiredAt}`).toBeLessThan(acquiredAt);
    proxy.setMode('pass');
  });

  it('is what createLeaser builds for lease.type etcd', async () => {
    const config = parseConfig(
      'lease:\n  type: etcd\n  hostname: n1\n  advertise-url: "http://n1:20202"\n  etcd:\n    endpoints: ["http://127.0.0.1:1", "http://127.0.0.1:2"]\n    key: k\n    ttl: 3s\n',
      'c.yml',
      { env: {}, hostname: 'h' },
    );
    const l = createLeaser(config);
    expect(l).toBeInstanceOf(EtcdLeaser);
    const e = l as EtcdLeaser;
    expect([e.type, e.hostname, e.advertiseURL, e.candidate, e.key, e.ttlMs, e.endpoints]).toEqual([
      'etcd',
      'n1',
      'http://n1:20202',
      true,
      'k',
      3_000,
      ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
    ]);
    await l.close();
    const missing = parseConfig(
      'lease:\n  type: etcd\n  etcd:\n    endpoints: ["https://127.0.0.1:1"]\n    key: k\n    tls: { ca: /nonexistent/ca.pem }\n',
      'c.yml',
      { env: {}, hostname: 'h' },
    );
    expect(() => createLeaser(missing)).toThrow(/cannot read lease\.etcd\.tls\.ca "\/nonexistent\/ca\.pem"/);
  });
});

describe('EtcdLeaser over https', () => {
  it('uses lease.etcd.tls: the CA to trust the members and a client certificate they require', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'litefs-etcd-tls-'));
    try {
      const tls = await makeTestCertificates(dir, '127.0.0.1');
      const etcd = await EtcdCluster.start({ tls });
      expect(etcd.endpoints[0]).toMatch(/^https:/);
      const config = parseConfig(
        [
          'lease:',
          '  type: etcd',
          '  hostname: n1',
          '  advertise-url: "http://n1:20202"',
          '  etcd:',
          `    endpoints: ${JSON.stringify(etcd.endpoints)}`,
          '    key: litefs/primary',
          '    ttl: 2s',
          `    tls: { ca: ${JSON.stringify(tls.ca)}, cert: ${JSON.stringify(tls.clientCert)}, key: ${JSON.stringify(tls.clientKey)} }`,
          '',
        ].join('\n'),
        'tls.yml',
        { env: {}, hostname: 'h' },
      );
      const l = createLeaser(config) as EtcdLeaser;
      leasers.push(l);
      const lease = await acquire(l);
      await lease.renew();
      expect((await l.primaryInfo()).hostname).toBe('n1');
      // Without the client certificate the members refuse the connection.
      const noCert = leaser([etcd.endpoints[0]!], 'x', { tls: { ca: await (await import('node:fs/promises')).readFile(tls.ca) } });
      await expect(noCert.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_ETCD' });
    } finally {
      await destroyAllEtcd();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
