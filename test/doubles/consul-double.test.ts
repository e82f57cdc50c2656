import { afterEach, describe, expect, it } from 'vitest';
import { ConsulTestDouble, type ConsulTestDoubleOptions } from './consul-double.js';
import { ManualClock } from './manual-clock.js';

// These tests hold the test double to Consul's documented HTTP behaviour
// (api-docs/session, api-docs/kv, api-docs/features/blocking, and the
// sessions internals page), speaking raw HTTP as any client would.

let double: ConsulTestDouble | undefined;
afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function start(opts: ConsulTestDoubleOptions = {}): Promise<ConsulTestDouble> {
  double = await ConsulTestDouble.start(opts);
  return double;
}

interface Reply {
  status: number;
  body: unknown;
  text: string;
  index: string | null;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${double!.url}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) parsed = JSON.parse(text);
  return { status: res.status, body: parsed, text, index: res.headers.get('x-consul-index') };
}

async function createSession(spec: Record<string, unknown>): Promise<string> {
  const r = await call('PUT', '/v1/session/create', spec);
  expect(r.status, r.text).toBe(200);
  return (r.body as { ID: string }).ID;
}

function kvItem(r: Reply): Record<string, unknown> {
  expect(r.status, r.text).toBe(200);
  return (r.body as Array<Record<string, unknown>>)[0]!;
}

const TTL_SESSION = { Name: 'litefs', Behavior: 'delete', LockDelay: '1s', TTL: '10s', Checks: [] };

describe('sessions', () => {
  it('creates with Consul defaults: behavior release, 15s lock-delay, agent node, serfHealth', async () => {
    await start({ nodeName: 'agent-1' });
    const id = await createSession({});
    const info = await call('GET', `/v1/session/info/${id}`);
    expect(info.body).toEqual([
      expect.objectContaining({ ID: id, Node: 'agent-1', Behavior: 'release', LockDelay: 15e9, TTL: '', NodeChecks: ['serfHealth'] }),
    ]);
    expect(Number(info.index)).toBeGreaterThan(0);
  });

  it('reads a numeric LockDelay below 1000 as seconds and a string as a Go duration', async () => {
    await start();
    const a = await createSession({ LockDelay: 5 });
    const b = await createSession({ LockDelay: '250ms' });
    expect(double!.session(a)!.lockDelayMs).toBe(5000);
    expect(double!.session(b)!.lockDelayMs).toBe(250);
  });

  it('enforces the TTL range [session_ttl_min, 24h]', async () => {
    await start();
    const short = await call('PUT', '/v1/session/create', { TTL: '5s' });
    expect(short.status).toBe(500);
    expect(short.text).toBe("Invalid Session TTL '5000000000', must be between [10s=24h0m0s]");
    expect((await call('PUT', '/v1/session/create', { TTL: '86401s' })).status).toBe(500);
    expect((await call('PUT', '/v1/session/create', { TTL: '10s' })).status).toBe(200);
    expect((await call('PUT', '/v1/session/create', { TTL: '24h' })).status).toBe(200);
    expect((await call('PUT', '/v1/session/create', { TTL: 'soon' })).text).toMatch(/^Session TTL 'soon' invalid/);
  });

  it('honours a lowered session_ttl_min', async () => {
    await start({ sessionTTLMinMs: 100 });
    expect((await call('PUT', '/v1/session/create', { TTL: '200ms' })).status).toBe(200);
    expect((await call('PUT', '/v1/session/create', { TTL: '50ms' })).status).toBe(500);
  });

  it('rejects an unknown behavior', async () => {
    await start();
    const r = await call('PUT', '/v1/session/create', { Behavior: 'explode' });
    expect([r.status, r.text]).toEqual([500, "Invalid Behavior setting 'explode'"]);
  });

  it('requires a registered node, and its checks', async () => {
    await start();
    const missing = await call('PUT', '/v1/session/create', { Node: 'pfx/litefs', Checks: [] });
    expect([missing.status, missing.text]).toEqual([500, 'Missing node registration']);
    expect((await call('PUT', '/v1/catalog/register', { Node: 'pfx/litefs', Address: 'localhost' })).body).toBe(true);
    const withSerf = await call('PUT', '/v1/session/create', { Node: 'pfx/litefs' });
    expect([withSerf.status, withSerf.text]).toEqual([500, "Missing check 'serfHealth' registration"]);
    const ok = await createSession({ Node: 'pfx/litefs', Checks: [] });
    expect(double!.session(ok)!.node).toBe('pfx/litefs');
  });

  it('renews known sessions and answers 404 for unknown ones', async () => {
    await start();
    const id = await createSession(TTL_SESSION);
    const r = await call('PUT', `/v1/session/renew/${id}`);
    expect(r.status).toBe(200);
    expect((r.body as Array<{ ID: string }>)[0]!.ID).toBe(id);
    const gone = await call('PUT', '/v1/session/renew/00000000-0000-0000-0000-000000000000');
    expect([gone.status, gone.text]).toEqual([404, "Session id '00000000-0000-0000-0000-000000000000' not found"]);
  });

  it('destroys idempotently', async () => {
    await start();
    const id = await createSession({});
    expect((await call('PUT', `/v1/session/destroy/${id}`)).body).toBe(true);
    expect((await call('PUT', `/v1/session/destroy/${id}`)).body).toBe(true);
    expect((await call('GET', `/v1/session/info/${id}`)).body).toEqual([]);
  });

  it('invalidates after TTL × 2 without renewal (Consul SessionTTLMultiplier), not before TTL', async () => {
    const clock = new ManualClock();
    await start({ clock });
    const id = await createSession(TTL_SESSION);
    clock.advance(10_000);
    expect(double!.session(id)).toBeDefined();
    clock.advance(9_999);
    expect(double!.session(id)).toBeDefined();
    clock.advance(1);
    expect(double!.session(id)).toBeUndefined();
    expect((await call('PUT', `/v1/session/renew/${id}`)).status).toBe(404);
  });

  it('restarts the TTL on renewal', async () => {
    const clock = new ManualClock();
    await start({ clock, ttlMultiplier: 1 });
    const id = await createSession(TTL_SESSION);
    clock.advance(9_000);
    expect((await call('PUT', `/v1/session/renew/${id}`)).status).toBe(200);
    clock.advance(9_000);
    expect(double!.session(id)).toBeDefined();
    clock.advance(1_000);
    expect(double!.session(id)).toBeUndefined();
  });

  it('expires sessions in real time when no clock is injected', async () => {
    await start({ sessionTTLMinMs: 50, ttlMultiplier: 1 });
    const id = await createSession({ ...TTL_SESSION, TTL: '100ms' });
    await call('PUT', `/v1/kv/k?acquire=${id}`, 'v');
    for (let i = 0; i < 100 && double!.session(id) !== undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(double!.session(id)).toBeUndefined();
    expect(double!.kv('k')).toBeUndefined();
  });
});

describe('KV', () => {
  it('stores values, returns them base64-encoded with indexes, and 404s missing keys with an index', async () => {
    await start();
    expect((await call('PUT', '/v1/kv/a/b?flags=42', 'hello')).body).toBe(true);
    const r = await call('GET', '/v1/kv/a/b');
    const item = kvItem(r);
    expect(item).toEqual({
      LockIndex: 0,
      Key: 'a/b',
      Flags: 42,
      Value: Buffer.from('hello').toString('base64'),
      CreateIndex: item['ModifyIndex'],
      ModifyIndex: item['ModifyIndex'],
    });
    expect(r.index).toBe(String(item['ModifyIndex']));
    const missing = await call('GET', '/v1/kv/nope');
    expect(missing.status).toBe(404);
    expect(missing.index).toBe(r.index);
  });

  it('decodes percent-encoded keys (the consul package encodes "/" as %2F)', async () => {
    await start();
    await call('PUT', '/v1/kv/litefs%2Fprimary', 'x');
    expect(double!.kv('litefs/primary')?.value).toBe('x');
  });

  it('serves ?raw, ?recurse and ?keys', async () => {
    await start();
    await call('PUT', '/v1/kv/p/a', 'A');
    await call('PUT', '/v1/kv/p/b/c', 'C');
    const raw = await call('GET', '/v1/kv/p/a?raw');
    expect([raw.status, raw.text]).toEqual([200, 'A']);
    expect((await call('GET', '/v1/kv/p/?recurse')).body).toHaveLength(2);
    expect((await call('GET', '/v1/kv/p/?keys&separator=/')).body).toEqual(['p/a', 'p/b/']);
  });

  it('reports an empty value as null', async () => {
    await start();
    await call('PUT', '/v1/kv/e', '');
    expect(kvItem(await call('GET', '/v1/kv/e'))['Value']).toBeNull();
  });

  it('keeps ModifyIndex on a write that changes nothing', async () => {
    await start();
    await call('PUT', '/v1/kv/same', 'v');
    const before = kvItem(await call('GET', '/v1/kv/same'))['ModifyIndex'];
    await call('PUT', '/v1/kv/same', 'v');
    expect(kvItem(await call('GET', '/v1/kv/same'))['ModifyIndex']).toBe(before);
  });

  it('check-and-set: cas=0 creates only, cas=N writes only at ModifyIndex N', async () => {
    await start();
    expect((await call('PUT', '/v1/kv/c?cas=0', 'first')).body).toBe(true);
    expect((await call('PUT', '/v1/kv/c?cas=0', 'second')).body).toBe(false);
    const idx = kvItem(await call('GET', '/v1/kv/c'))['ModifyIndex'] as number;
    expect((await call('PUT', `/v1/kv/c?cas=${idx + 100}`, 'third')).body).toBe(false);
    expect((await call('PUT', `/v1/kv/c?cas=${idx}`, 'third')).body).toBe(true);
    expect(double!.kv('c')?.value).toBe('third');
  });

  it('deletes, with cas (0 never deletes an existing key) and recurse; deletions raise the index', async () => {
    await start();
    await call('PUT', '/v1/kv/d', 'x');
    const before = Number((await call('GET', '/v1/kv/d')).index);
    expect((await call('DELETE', '/v1/kv/d?cas=0')).body).toBe(false);
    expect(double!.kv('d')).toBeDefined();
    expect((await call('DELETE', '/v1/kv/d')).body).toBe(true);
    const after = await call('GET', '/v1/kv/d');
    expect(after.status).toBe(404);
    expect(Number(after.index)).toBeGreaterThan(before);
    await call('PUT', '/v1/kv/r/1', 'x');
    await call('PUT', '/v1/kv/r/2', 'x');
    await call('DELETE', '/v1/kv/r/?recurse');
    expect(double!.keys()).toEqual([]);
  });
});

describe('locks', () => {
  it('acquire sets Session and increments LockIndex; the holder may re-acquire to update the value', async () => {
    await start();
    const s = await createSession(TTL_SESSION);
    expect((await call('PUT', `/v1/kv/lock?acquire=${s}`, 'one')).body).toBe(true);
    expect(kvItem(await call('GET', '/v1/kv/lock'))).toMatchObject({ Session: s, LockIndex: 1 });
    expect((await call('PUT', `/v1/kv/lock?acquire=${s}`, 'two')).body).toBe(true);
    expect(double!.kv('lock')).toMatchObject({ session: s, lockIndex: 1, value: 'two' });
  });

  it('acquire fails while another session holds the key', async () => {
    await start();
    const a = await createSession(TTL_SESSION);
    const b = await createSession(TTL_SESSION);
    await call('PUT', `/v1/kv/lock?acquire=${a}`, 'a');
    expect((await call('PUT', `/v1/kv/lock?acquire=${b}`, 'b')).body).toBe(false);
    expect(double!.kv('lock')).toMatchObject({ session: a, value: 'a' });
  });

  it('acquire with an unknown session is an error', async () => {
    await start();
    const r = await call('PUT', '/v1/kv/lock?acquire=11111111-1111-1111-1111-111111111111', 'x');
    expect([r.status, r.text]).toEqual([500, 'invalid session "11111111-1111-1111-1111-111111111111"']);
  });

  it('release clears Session, keeps LockIndex, writes the body, and starts no lock-delay', async () => {
    await start();
    const a = await createSession(TTL_SESSION);
    const b = await createSession(TTL_SESSION);
    await call('PUT', `/v1/kv/lock?acquire=${a}`, 'a');
    expect((await call('PUT', `/v1/kv/lock?release=${b}`, '')).body).toBe(false);
    expect((await call('PUT', `/v1/kv/lock?release=${a}`, '')).body).toBe(true);
    expect(double!.kv('lock')).toMatchObject({ session: '', lockIndex: 1, value: '' });
    expect(double!.lockDelayEnds('lock')).toBeUndefined();
    expect((await call('PUT', `/v1/kv/lock?acquire=${b}`, 'b')).body).toBe(true);
    expect(double!.kv('lock')).toMatchObject({ session: b, lockIndex: 2 });
  });

  it('a plain PUT overwrites a locked key but keeps the holder (locks are advisory)', async () => {
    await start();
    const a = await createSession(TTL_SESSION);
    await call('PUT', `/v1/kv/lock?acquire=${a}`, 'a');
    await call('PUT', '/v1/kv/lock', 'other');
    expect(double!.kv('lock')).toMatchObject({ session: a, value: 'other' });
  });

  it('invalidation with behavior delete deletes held keys and blocks acquire for lock-delay', async () => {
    const clock = new ManualClock();
    await start({ clock });
    const a = await createSession({ ...TTL_SESSION, LockDelay: '1s' });
    const b = await createSession(TTL_SESSION);
    await call('PUT', `/v1/kv/lock?acquire=${a}`, 'a');
    await call('PUT', `/v1/session/destroy/${a}`);
    expect(double!.kv('lock')).toBeUndefined();
    expect(double!.lockDelayEnds('lock')).toBe(clock.now() + 1000);
    expect((await call('PUT', `/v1/kv/lock?acquire=${b}`, 'b')).body).toBe(false);
    clock.advance(999);
    expect((await call('PUT', `/v1/kv/lock?acquire=${b}`, 'b')).body).toBe(false);
    clock.advance(1);
    expect((await call('PUT', `/v1/kv/lock?acquire=${b}`, 'b')).body).toBe(true);
  });

  it('invalidation with behavior release keeps the key without a session', async () => {
    const clock = new ManualClock();
    await start({ clock });
    const a = await createSession({ ...TTL_SESSION, Behavior: 'release' });
    await call('PUT', `/v1/kv/lock?acquire=${a}`, 'a');
    const before = double!.kv('lock')!.modifyIndex;
    clock.advance(20_000);
    expect(double!.kv('lock')).toMatchObject({ session: '', value: 'a', lockIndex: 1 });
    expect(double!.kv('lock')!.modifyIndex).toBeGreaterThan(before);
    expect(double!.lockDelayEnds('lock')).toBeDefined();
  });

  it('caps lock-delay at 60s and applies none when it is 0', async () => {
    const clock = new ManualClock();
    await start({ clock });
    const long = await createSession({ ...TTL_SESSION, LockDelay: '5m' });
    const none = await createSession({ ...TTL_SESSION, LockDelay: '0s' });
    await call('PUT', `/v1/kv/l1?acquire=${long}`, 'x');
    await call('PUT', `/v1/kv/l2?acquire=${none}`, 'x');
    double!.invalidateSession(long);
    double!.invalidateSession(none);
    expect(double!.lockDelayEnds('l1')).toBe(clock.now() + 60_000);
    expect(double!.lockDelayEnds('l2')).toBeUndefined();
  });

  it('deregistering a node invalidates its sessions', async () => {
    await start();
    await call('PUT', '/v1/catalog/register', { Node: 'n', Address: 'localhost' });
    const s = await createSession({ ...TTL_SESSION, Node: 'n' });
    await call('PUT', `/v1/kv/lock?acquire=${s}`, 'x');
    await call('PUT', '/v1/catalog/deregister', { Node: 'n' });
    expect(double!.session(s)).toBeUndefined();
    expect(double!.kv('lock')).toBeUndefined();
  });
});

describe('blocking queries', () => {
  it('returns at once when the index is stale, and waits for a change otherwise', async () => {
    await start();
    await call('PUT', '/v1/kv/w', 'v0');
    await call('PUT', '/v1/kv/w', 'v1');
    const first = await call('GET', '/v1/kv/w');
    expect(Number(first.index)).toBe(2);
    expect((await call('GET', '/v1/kv/w?index=1&wait=10m')).status).toBe(200); // 1 < current index: no blocking
    const pending = call('GET', `/v1/kv/w?index=${first.index}&wait=30s`);
    // Give the request time to reach the double and park before writing.
    for (let i = 0; i < 100 && double!.requests.filter((r) => r.query['index'] === first.index).length === 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    await call('PUT', '/v1/kv/w', 'v2');
    const woke = await pending;
    expect(Number(woke.index)).toBeGreaterThan(Number(first.index));
    expect(Buffer.from(kvItem(woke)['Value'] as string, 'base64').toString()).toBe('v2');
  });

  it('wakes when the key is deleted by session invalidation', async () => {
    await start();
    const s = await createSession(TTL_SESSION);
    await call('PUT', `/v1/kv/w?acquire=${s}`, 'v');
    const idx = (await call('GET', '/v1/kv/w')).index!;
    const pending = call('GET', `/v1/kv/w?index=${idx}&wait=30s`);
    for (let i = 0; i < 100 && double!.requests.filter((r) => r.query['index'] === idx).length === 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    double!.invalidateSession(s);
    const woke = await pending;
    expect(woke.status).toBe(404);
    expect(Number(woke.index)).toBeGreaterThan(Number(idx));
  });

  it('times out after wait with the same index when nothing changes', async () => {
    await start();
    await call('PUT', '/v1/kv/w', 'v');
    const idx = (await call('GET', '/v1/kv/w')).index;
    await call('PUT', '/v1/kv/other', 'x'); // a different key does not wake the query
    const r = await call('GET', `/v1/kv/w?index=${Number(idx) + 1}&wait=50ms`);
    expect(r.status).toBe(200);
    expect(r.index).toBe(String(Number(idx) + 1));
  });
});

describe('ACL tokens', () => {
  it('requires the token in X-Consul-Token, a Bearer header or ?token=', async () => {
    await start({ aclToken: 'secret' });
    const anon = await call('GET', '/v1/kv/x');
    expect([anon.status, anon.text]).toEqual([403, 'Permission denied']);
    expect((await call('GET', '/v1/kv/x', undefined, { 'X-Consul-Token': 'wrong' })).text).toBe('ACL not found');
    expect((await call('GET', '/v1/kv/x', undefined, { 'X-Consul-Token': 'secret' })).status).toBe(404);
    expect((await call('GET', '/v1/kv/x', undefined, { Authorization: 'Bearer secret' })).status).toBe(404);
    expect((await call('GET', '/v1/kv/x?token=secret')).status).toBe(404);
    expect(double!.requests.map((r) => r.token)).toEqual([undefined, 'wrong', 'secret', 'secret', 'secret']);
  });
});

describe('outages', () => {
  it('answers 500 without a leader, hangs, or resets, and recovers', async () => {
    await start();
    double!.setOutage('error');
    const e = await call('GET', '/v1/kv/x');
    expect([e.status, e.text]).toEqual([500, 'rpc error making call: No cluster leader']);
    double!.setOutage('reset');
    await expect(call('GET', '/v1/kv/x')).rejects.toThrow();
    double!.setOutage('hang');
    const hung = fetch(`${double!.url}/v1/kv/x`, { signal: AbortSignal.timeout(200) });
    await expect(hung).rejects.toThrow();
    double!.setOutage(null);
    expect((await call('GET', '/v1/kv/x')).status).toBe(404);
  });
});
