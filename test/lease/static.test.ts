import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLeaser, isLeaseError, LeaseError, PrimaryExistsError, StaticLeaser } from '../../src/lease/index.js';

const primaryOpts = { candidate: true, hostname: 'primary-1', advertiseURL: 'http://primary-1:20202' };
const replicaOpts = { candidate: false, hostname: 'primary-1', advertiseURL: 'http://primary-1:20202' };

describe('StaticLeaser on the primary (candidate: true)', () => {
  it('always acquires a lease that lasts until the year 3000', async () => {
    const leaser = new StaticLeaser(primaryOpts);
    expect([leaser.type, leaser.hostname, leaser.advertiseURL, leaser.candidate]).toEqual([
      'static',
      'primary-1',
      'http://primary-1:20202',
      true,
    ]);
    const a = await leaser.acquire();
    const b = await leaser.acquire();
    expect(a.id).toBe('');
    expect(a.renewedAt.getTime()).toBe(0);
    expect(a.renewedAt.getTime() + a.ttlMs).toBe(Date.UTC(3000, 0, 1));
    await a.renew();
    await b.close();
  });

  it('reports no primary other than itself', async () => {
    await expect(new StaticLeaser(primaryOpts).primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_NO_PRIMARY' });
  });

  it('does not support handoff', async () => {
    const leaser = new StaticLeaser(primaryOpts);
    const lease = await leaser.acquire();
    await expect(lease.handoff(7n)).rejects.toMatchObject({ code: 'ERR_LEASE_HANDOFF_UNSUPPORTED' });
    await expect(leaser.acquireExisting('x')).rejects.toMatchObject({ code: 'ERR_LEASE_HANDOFF_UNSUPPORTED' });
    const ac = new AbortController();
    const next = lease.nextHandoff({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(next).rejects.toThrow('stop');
  });

  it('stores no cluster ID', async () => {
    const leaser = new StaticLeaser(primaryOpts);
    await leaser.setClusterID('LFSC0123456789ABCDEF');
    expect(await leaser.clusterID()).toBeNull();
  });
});

describe('StaticLeaser on a replica (candidate: false)', () => {
  it('never acquires, and names the configured primary', async () => {
    const leaser = new StaticLeaser(replicaOpts);
    const err = await leaser.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrimaryExistsError);
    expect(isLeaseError(err, 'ERR_LEASE_PRIMARY_EXISTS')).toBe(true);
    expect((err as PrimaryExistsError).primary).toEqual({ hostname: 'primary-1', advertiseURL: 'http://primary-1:20202' });
    expect(await leaser.primaryInfo()).toEqual({ hostname: 'primary-1', advertiseURL: 'http://primary-1:20202' });
    expect(leaser.advertiseURL).toBe('');
  });

  it('watchPrimary yields the primary once and ends on abort', async () => {
    const leaser = new StaticLeaser(replicaOpts);
    const ac = new AbortController();
    const seen: unknown[] = [];
    const done = (async () => {
      for await (const p of leaser.watchPrimary({ signal: ac.signal })) seen.push(p);
    })();
    await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await done;
    expect(seen).toEqual([{ hostname: 'primary-1', advertiseURL: 'http://primary-1:20202' }]);
  });

  it('refuses calls after close and ends watches', async () => {
    const leaser = new StaticLeaser(replicaOpts);
    const iter = leaser.watchPrimary({ signal: new AbortController().signal })[Symbol.asyncIterator]();
    await iter.next();
    const end = iter.next();
    await leaser.close();
    expect((await end).done).toBe(true);
    await expect(leaser.acquire()).rejects.toBeInstanceOf(LeaseError);
    await expect(leaser.primaryInfo()).rejects.toMatchObject({ code: 'ERR_LEASE_CLOSED' });
  });
});

describe('createLeaser', () => {
  it('builds a static leaser from config', async () => {
    const cfg = parseConfig('lease:\n  type: static\n  candidate: false\n  advertise-url: http://p:20202\n', 't', { env: {} });
    const leaser = createLeaser(cfg);
    expect(leaser).toBeInstanceOf(StaticLeaser);
    expect(await leaser.primaryInfo()).toEqual({ hostname: 'p', advertiseURL: 'http://p:20202' });
  });
});
