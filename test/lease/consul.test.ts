import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import {
  ConsulLeaser,
  ConsulRequestError,
  createLeaser,
  isLeaseError,
  PrimaryExistsError,
  type ConsulLeaserOptions,
  type Lease,
  type PrimaryInfo,
} from '../../src/lease/index.js';
import { ConsulTestDouble, type ConsulTestDoubleOptions } from '../doubles/consul-double.js';
import { ManualClock } from '../doubles/manual-clock.js';

const KEY = 'litefs/primary';

let double: ConsulTestDouble;
const leasers: ConsulLeaser[] = [];
const leases: Lease[] = [];

afterEach(async () => {
  for (const l of leases.splice(0)) await l.close().catch(() => undefined);
  for (const l of leasers.splice(0)) await l.close();
  await double?.close();
});

async function startDouble(opts: ConsulTestDoubleOptions = {}): Promise<ConsulTestDouble> {
  double = await ConsulTestDouble.start(opts);
  return double;
}

function leaser(name: string, opts: Partial<ConsulLeaserOptions> = {}): ConsulLeaser {
  const l = new ConsulLeaser({
    url: double.url,
    key: KEY,
    hostname: name,
    advertiseURL: `http://${name}:20202`,
    requestTimeoutMs: 2_000,
    ...opts,
  });
  leasers.push(l);
  return l;
}

async function acquire(l: ConsulLeaser): Promise<Lease> {
  const lease = await l.acquire();
  leases.push(lease);
  return lease;
}

function info(name: string): PrimaryInfo {
  return { hostname: name, advertiseURL: `http://${name}:20202` };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('acquire', () => {
  it('creates a litefs session (delete, lock-delay, TTL, no checks) and locks the key with PrimaryInfo JSON', async () => {
    await startDouble();
    const a = leaser('node-a');
    const before = Date.now();
    const lease = await acquire(a);
    expect(lease.ttlMs).toBe(10_000);
    expect(lease.renewedAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(lease.renewedAt.getTime()).toBeLessThanOrEqual(Date.now());
    expect(double.session(lease.id)).toMatchObject({
      name: 'litefs',
      behavior: 'delete',
      lockDelayMs: 1000,
      ttl: '10s',
      nodeChecks: [],
      node: 'consul-test-double',
    });
    expect(double.kv(KEY)).toMatchObject({
      session: lease.id,
      lockIndex: 1,
      value: '{"hostname":"node-a","advertise-url":"http://node-a:20202"}',
    });
  });

  it('gives a second candidate ERR_LEASE_PRIMARY_EXISTS naming the primary, and cleans up its session', async () => {
    await startDouble();
    const a = leaser('node-a');
    const b = leaser('node-b');
    const lease = await acquire(a);
    const err = await rejection(b.acquire());
    expect(err).toBeInstanceOf(PrimaryExistsError);
    expect((err as PrimaryExistsError).primary).toEqual(info('node-a'));
    expect((err as Error).message).toContain('node-a (http://node-a:20202) holds the primary lease');
    expect(double.sessions().map((s) => s.id)).toEqual([lease.id]);
    expect(await b.primaryInfo()).toEqual(info('node-a'));
  });

  it('refuses to acquire on a non-candidate', async () => {
    await startDouble();
    await expect(leaser('r', { candidate: false }).acquire()).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_CANDIDATE' });
    expect(double.sessions()).toEqual([]);
  });

  it('passes ttl and lock-delay to Consul in Go duration syntax', async () => {
    await startDouble();
    const lease = await acquire(leaser('a', { ttlMs: 90_000, lockDelayMs: 1500 }));
    expect(double.session(lease.id)).toMatchObject({ ttl: '1m30s', lockDelayMs: 1500 });
  });
});

describe('primaryInfo', () => {
  it('is ERR_LEASE_NO_PRIMARY without a key, and rejects a key that is not PrimaryInfo', async () => {
    await startDouble();
    const a = leaser('a');
    await expect(a.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_NO_PRIMARY' });
    double.putKV(KEY, 'not json');
    await expect(a.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_INVALID_PRIMARY_INFO' });
  });
});

describe('renew and expiry', () => {
  it('renews the session and moves renewedAt', async () => {
    const clock = new ManualClock();
    await startDouble({ clock });
    const a = leaser('a', { now: clock.now });
    const lease = await acquire(a);
    const first = lease.renewedAt.getTime();
    clock.advance(15_000);
    await lease.renew();
    expect(lease.renewedAt.getTime()).toBe(first + 15_000);
    clock.advance(15_000); // 30s after acquire, 15s after renewal: still alive (2×TTL = 20s)
    expect(double.session(lease.id)).toBeDefined();
  });

  it('expires without renewals: renew → ERR_LEASE_EXPIRED, key deleted, others acquire only after lock-delay', async () => {
    const clock = new ManualClock();
    await startDouble({ clock });
    const a = leaser('a', { now: clock.now });
    const b = leaser('b', { now: clock.now });
    const lease = await acquire(a);
    clock.advance(20_000); // TTL × 2: the double invalidates, as Consul does
    expect(double.kv(KEY)).toBeUndefined();
    await expect(lease.renew()).rejects.toMatchObject({ code: 'ERR_LEASE_EXPIRED' });
    await expect(b.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_NO_PRIMARY' });
    const blocked = await rejection(b.acquire());
    expect(isLeaseError(blocked, 'ERR_LEASE_PRIMARY_EXISTS')).toBe(true);
    expect((blocked as PrimaryExistsError).primary).toBeUndefined();
    expect((blocked as Error).message).toContain('lock-delay (1s');
    clock.advance(999);
    await expect(b.acquire()).rejects.toMatchObject({ code: 'ERR_LEASE_PRIMARY_EXISTS' });
    clock.advance(1);
    const bl = await acquire(b);
    expect(double.kv(KEY)).toMatchObject({ session: bl.id });
    expect(await a.primaryInfo()).toEqual(info('b'));
  });
});

describe('close', () => {
  it('releases then destroys, so another candidate acquires at once (no lock-delay)', async () => {
    const clock = new ManualClock();
    await startDouble({ clock });
    const a = leaser('a');
    const b = leaser('b');
    const lease = await a.acquire();
    await lease.close();
    await lease.close(); // idempotent
    expect(double.session(lease.id)).toBeUndefined();
    expect(double.kv(KEY)).toMatchObject({ session: '', value: '' });
    expect(double.lockDelayEnds(KEY)).toBeUndefined();
    await expect(b.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_NO_PRIMARY' });
    await acquire(b);
    expect(await a.primaryInfo()).toEqual(info('b'));
    await expect(lease.renew()).rejects.toMatchObject({ code: 'ERR_LEASE_CLOSED' });
    const releases = double.requests.filter((r) => r.query['release'] === lease.id);
    const destroys = double.requests.filter((r) => r.path === `/v1/session/destroy/${lease.id}`);
    expect(releases).toHaveLength(1);
    expect(destroys).toHaveLength(1);
    expect(double.requests.indexOf(releases[0]!)).toBeLessThan(double.requests.indexOf(destroys[0]!));
  });

  it('still destroys the session when the key was taken from it', async () => {
    await startDouble();
    const lease = await leaser('a').acquire();
    double.putKV(KEY, ''); // an operator overwrote the key; the session still holds it
    await lease.close();
    expect(double.sessions()).toEqual([]);
  });
});

describe('handoff', () => {
  it('acquireExisting takes over the same session and rewrites the key without a gap', async () => {
    await startDouble();
    const a = leaser('a');
    const b = leaser('b');
    const lease = await a.acquire();
    // The primary's loop waits for a handoff request; the HTTP handler sends one.
    const requested = lease.nextHandoff();
    await lease.handoff(0x1234n, { timeoutMs: 1000 });
    expect(await requested).toBe(0x1234n);
    await expect(b.acquireExisting('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({ code: 'ERR_LEASE_EXPIRED' });
    const handed = await b.acquireExisting(lease.id);
    leases.push(handed);
    expect(handed.id).toBe(lease.id);
    expect(double.kv(KEY)).toMatchObject({ session: lease.id, lockIndex: 1, value: '{"hostname":"b","advertise-url":"http://b:20202"}' });
    await handed.renew();
    expect(await a.primaryInfo()).toEqual(info('b'));
  });

  it('times out a handoff nobody takes, and fails waiting receivers when the lease closes', async () => {
    await startDouble();
    const lease = await leaser('a').acquire();
    await expect(lease.handoff(1n, { timeoutMs: 20 })).rejects.toMatchObject({ code: 'ERR_LEASE_HANDOFF_TIMEOUT' });
    const waiting = expect(lease.nextHandoff()).rejects.toMatchObject({ code: 'ERR_LEASE_CLOSED' });
    await lease.close();
    await waiting;
  });
});

describe('cluster ID', () => {
  it('is write-once at <key>/clusterid', async () => {
    await startDouble();
    const a = leaser('a');
    expect(await a.clusterID()).toBeNull();
    await a.setClusterID('LFSC0000000000000001');
    expect(double.kv('litefs/primary/clusterid')?.value).toBe('LFSC0000000000000001');
    await a.setClusterID('LFSC0000000000000001'); // same ID again is fine
    const err = await rejection(leaser('b').setClusterID('LFSC0000000000000002'));
    expect(isLeaseError(err, 'ERR_LEASE_CLUSTER_ID_MISMATCH')).toBe(true);
    expect((err as Error).message).toContain('already holds cluster ID "LFSC0000000000000001"');
    expect(await leaser('c').clusterID()).toBe('LFSC0000000000000001');
  });

  it('uses CAS so exactly one of two racing nodes wins', async () => {
    await startDouble();
    const results = await Promise.allSettled([
      leaser('a').setClusterID('LFSCAAAAAAAAAAAAAAAA'),
      leaser('b').setClusterID('LFSCBBBBBBBBBBBBBBBB'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(
      double.requests
        .filter((r) => r.path === '/v1/kv/litefs/primary/clusterid' && r.method === 'PUT')
        .every((r) => r.query['cas'] === '0'),
    ).toBe(true);
  });

  it('replaces an empty stored value', async () => {
    await startDouble();
    double.putKV('litefs/primary/clusterid', '');
    const a = leaser('a');
    expect(await a.clusterID()).toBeNull();
    await a.setClusterID('LFSC0000000000000003');
    expect(await a.clusterID()).toBe('LFSC0000000000000003');
  });
});

describe('Consul outages', () => {
  it('a hung agent gives a typed error within the request timeout', async () => {
    await startDouble();
    const a = leaser('a', { requestTimeoutMs: 200 });
    double.setOutage('hang');
    const err = await rejection(a.primaryInfo());
    expect(err).toBeInstanceOf(ConsulRequestError);
    const e = err as ConsulRequestError;
    expect(e.code).toBe('ERR_LEASE_CONSUL');
    expect(e.timedOut).toBe(true);
    expect(e.url).toBe(`${double.url}/v1/kv/litefs/primary`);
    expect(e.message).toBe(`consul kv.get (GET ${double.url}/v1/kv/litefs/primary) failed: no answer within 200ms`);
    await expect(a.acquire()).rejects.toMatchObject({ code: 'ERR_LEASE_CONSUL', timedOut: true, operation: 'session.create' });
  });

  it('a 500 answer carries the status and Consul message; renew during an outage is not "expired"', async () => {
    await startDouble();
    const a = leaser('a', { requestTimeoutMs: 500 });
    const lease = await acquire(a);
    double.setOutage('error');
    const err = (await rejection(lease.renew())) as ConsulRequestError;
    expect(err.code).toBe('ERR_LEASE_CONSUL');
    expect(err.status).toBe(500);
    expect(err.message).toContain('HTTP 500: rpc error making call: No cluster leader');
    double.setOutage('reset');
    await expect(a.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_CONSUL', status: undefined, timedOut: false });
    double.setOutage(null);
    await lease.renew();
  });

  it('an aborted call rejects with the abort reason', async () => {
    await startDouble();
    const a = leaser('a', { requestTimeoutMs: 5_000 });
    double.setOutage('hang');
    const ac = new AbortController();
    const p = a.primaryInfo({ signal: ac.signal });
    ac.abort(new Error('shutting down'));
    await expect(p).rejects.toThrow('shutting down');
  });
});

describe('ACL token and key prefix from the URL', () => {
  it('sends the URL password as X-Consul-Token on every request and never prints it', async () => {
    await startDouble({ aclToken: 's3cr3t-token' });
    const url = double.url.replace('http://', 'http://:s3cr3t-token@');
    const a = leaser('a', { url });
    const lease = await acquire(a);
    await lease.renew();
    await a.setClusterID('LFSC0000000000000009');
    expect(double.requests.length).toBeGreaterThanOrEqual(4);
    expect(double.requests.every((r) => r.token === 's3cr3t-token')).toBe(true);
    const wrong = leaser('b', { url: double.url.replace('http://', 'http://:wrong@') });
    const err = (await rejection(wrong.primaryInfo())) as ConsulRequestError;
    expect(err.status).toBe(403);
    expect(err.message).not.toContain('wrong');
    expect(err.message).not.toContain('s3cr3t');
  });

  it('prefixes keys with the URL path and registers <prefix>/litefs as the session node', async () => {
    await startDouble();
    const a = leaser('a', { url: `${double.url}/my-cluster/` });
    expect(a.key).toBe('my-cluster/litefs/primary');
    expect(a.clusterIDKey).toBe('my-cluster/litefs/primary/clusterid');
    const lease = await acquire(a);
    expect(double.nodes()).toContain('my-cluster/litefs');
    expect(double.session(lease.id)?.node).toBe('my-cluster/litefs');
    expect(double.kv('my-cluster/litefs/primary')?.session).toBe(lease.id);
    expect(double.requests.filter((r) => r.path === '/v1/catalog/register')).toHaveLength(1);
    await acquire(leaser('a2', { url: `${double.url}/other/` })); // a different prefix is a different lease
  });
});

describe('watchPrimary', () => {
  it('reports the current primary, then every change, through blocking queries', async () => {
    await startDouble();
    const watcher = leaser('w', { candidate: false, watchIntervalMs: 1 });
    const a = leaser('a');
    const b = leaser('b');
    const ac = new AbortController();
    const it = watcher.watchPrimary({ signal: ac.signal })[Symbol.asyncIterator]();
    expect((await it.next()).value).toBeNull();
    const next = it.next();
    const la = await a.acquire();
    expect((await next).value).toEqual(info('a'));
    const afterClose = it.next();
    await la.close();
    expect((await afterClose).value).toBeNull();
    const afterB = it.next();
    await acquire(b);
    expect((await afterB).value).toEqual(info('b'));
    const blocking = double.requests.filter((r) => r.path === '/v1/kv/litefs/primary' && r.query['index'] !== undefined);
    expect(blocking.length).toBeGreaterThanOrEqual(3);
    expect(blocking.every((r) => r.query['wait'] === '30000ms')).toBe(true);
    const end = it.next();
    ac.abort();
    expect((await end).done).toBe(true);
  });

  it('keeps watching through an outage and ends when the leaser closes', async () => {
    await startDouble();
    const watcher = leaser('w', { candidate: false, watchRetryMs: 10, watchIntervalMs: 1, requestTimeoutMs: 200, watchWaitMs: 100 });
    const a = leaser('a');
    const it = watcher.watchPrimary({ signal: new AbortController().signal })[Symbol.asyncIterator]();
    expect((await it.next()).value).toBeNull();
    double.setOutage('error');
    const next = it.next();
    await new Promise((r) => setTimeout(r, 50));
    double.setOutage(null);
    await acquire(a);
    expect((await next).value).toEqual(info('a'));
    const end = it.next();
    await watcher.close();
    expect((await end).done).toBe(true);
  });
});

describe('createLeaser', () => {
  it('builds a Consul leaser from config', async () => {
    await startDouble();
    const cfg = parseConfig(
      `lease:\n  type: consul\n  hostname: n1\n  consul:\n    url: "${double.url}/pfx"\n    key: primary\n    ttl: 30s\n    lock-delay: 2s\n`,
      't',
      { env: {} },
    );
    const l = createLeaser(cfg) as ConsulLeaser;
    leasers.push(l);
    expect(l).toBeInstanceOf(ConsulLeaser);
    expect([l.key, l.hostname, l.advertiseURL, l.ttlMs, l.lockDelayMs]).toEqual(['pfx/primary', 'n1', 'http://n1:20202', 30_000, 2_000]);
    const lease = await acquire(l);
    expect(double.session(lease.id)).toMatchObject({ ttl: '30s', lockDelayMs: 2000 });
  });
});
