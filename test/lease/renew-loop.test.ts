import { afterEach, describe, expect, it } from 'vitest';
import { ConsulLeaser, isLeaseError, runRenewLoop, StaticLeaser, type Lease } from '../../src/lease/index.js';
import { ConsulTestDouble } from '../doubles/consul-double.js';

let double: ConsulTestDouble | undefined;
let leaser: ConsulLeaser | undefined;
afterEach(async () => {
  await leaser?.close();
  await double?.close();
  leaser = undefined;
  double = undefined;
});

/** A real-time lease with a 1 s TTL (the double's session_ttl_min lowered for the test). */
async function shortLease(): Promise<Lease> {
  double = await ConsulTestDouble.start({ sessionTTLMinMs: 100, ttlMultiplier: 1 });
  leaser = new ConsulLeaser({
    url: double.url,
    key: 'k',
    hostname: 'a',
    advertiseURL: 'http://a:1',
    ttlMs: 1_000,
    lockDelayMs: 0,
    requestTimeoutMs: 1_000,
  });
  return leaser.acquire();
}

describe('runRenewLoop', () => {
  it('renews every TTL/2 and keeps the session alive past its TTL until aborted', async () => {
    const lease = await shortLease();
    const ac = new AbortController();
    let renewals = 0;
    // A small margin: the default (TTL/4 below 1 s) leaves a loaded machine little slack at this TTL.
    const loop = runRenewLoop(lease, {
      signal: ac.signal,
      safetyMarginMs: 20,
      onRenew: () => {
        renewals++;
        if (renewals === 5) ac.abort();
      },
    });
    expect(await loop).toEqual({ reason: 'aborted' });
    expect(renewals).toBe(5);
    // Five renewals at ~500ms spacing outlast the 1 s TTL; the session is still there.
    expect(double!.session(lease.id)).toBeDefined();
    expect(double!.requests.filter((r) => r.path === `/v1/session/renew/${lease.id}`)).toHaveLength(5);
  });

  it('ends with ERR_LEASE_EXPIRED when the session disappears', async () => {
    const lease = await shortLease();
    double!.invalidateSession(lease.id);
    const result = await runRenewLoop(lease, { signal: new AbortController().signal, safetyMarginMs: 20 });
    expect(result.reason).toBe('expired');
    expect(result.reason === 'expired' && isLeaseError(result.error, 'ERR_LEASE_EXPIRED')).toBe(true);
  });

  it('gives up before the TTL runs out when Consul hangs', async () => {
    const lease = await shortLease();
    double!.setOutage('hang');
    const result = await runRenewLoop(lease, { signal: new AbortController().signal, retryIntervalMs: 20, safetyMarginMs: 20 });
    expect(result.reason).toBe('expired');
    // The attempt was cut off at the lease's own deadline, not at the 1s request timeout.
    expect(result.reason === 'expired' && isLeaseError(result.error, 'ERR_LEASE_FENCED')).toBe(true);
  });

  it('retries transient failures and recovers', async () => {
    const lease = await shortLease();
    double!.setOutage('error');
    const ac = new AbortController();
    let renewals = 0;
    const loop = runRenewLoop(lease, {
      signal: ac.signal,
      retryIntervalMs: 10,
      safetyMarginMs: 10,
      onRenew: () => {
        renewals++;
        ac.abort();
      },
    });
    // Let one attempt fail, then let Consul answer again.
    for (let i = 0; i < 200 && !double!.requests.some((r) => r.path.startsWith('/v1/session/renew/')); i++)
      await new Promise((r) => setTimeout(r, 5));
    double!.setOutage(null);
    expect(await loop).toEqual({ reason: 'aborted' });
    expect(renewals).toBe(1);
  });

  it('idles on a static lease until aborted', async () => {
    const lease = await new StaticLeaser({ candidate: true, hostname: 'p', advertiseURL: 'http://p:1' }).acquire();
    const ac = new AbortController();
    const loop = runRenewLoop(lease, { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    expect(await loop).toEqual({ reason: 'aborted' });
  });
});
