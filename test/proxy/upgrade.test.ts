import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, startNode, type Cleanups } from './cluster.js';
import { FakeBackend } from './fake-backend.js';
import { within } from './util.js';
import { openWebSocket } from './ws.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const FIXED_NOW = Date.UTC(2030, 0, 1, 0, 0, 0);
const portOf = (url: string): number => Number(new URL(url).port);

describe('proxy WebSocket / Upgrade', () => {
  it('tunnels a WebSocket on a replica to its own app (an Upgrade GET is a read)', async () => {
    const { primary, replica } = await startCluster(cleanups);
    const ws = await within(openWebSocket(portOf(replica.url), '/ws/chat', { 'x-client': 'c1' }), 10_000, 'the handshake');
    expect(ws.status).toBe(101);
    ws.send('hello');
    expect(await within(ws.next(), 10_000, 'the echo')).toBe('replica:hello');
    ws.send('again');
    expect(await within(ws.next(), 10_000, 'the second echo')).toBe('replica:again');
    expect(replica.proxy.stats().tunnels).toBe(1);
    const seen = replica.app.upgrades[0]!;
    expect(seen.url).toBe('/ws/chat');
    expect(seen.headers.host).toBe('ws.example');
    expect(seen.headers['x-client']).toBe('c1');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers.upgrade).toBe('websocket');
    expect(primary.app.upgrades).toHaveLength(0);
    ws.socket.end();
    await within(ws.closed, 10_000, 'the close');
  });

  it('forwards a WebSocket on an always-forward path to the primary, which adds the __txid cookie to the 101', async () => {
    const { primary, replica } = await startCluster(cleanups, {
      config: { alwaysForward: ['/ws/write/*'] },
      options: { now: () => FIXED_NOW },
    });
    const ws = await within(openWebSocket(portOf(replica.url), '/ws/write/doc1'), 10_000, 'the handshake');
    expect(ws.status).toBe(101);
    expect(ws.head).toContain('Set-Cookie: __txid=0000000000000005; Path=/; HttpOnly; Expires=Tue, 01 Jan 2030 00:05:00 GMT');
    ws.send('edit');
    expect(await within(ws.next(), 10_000, 'the echo')).toBe('primary:edit');
    expect(replica.app.upgrades).toHaveLength(0);
    expect(primary.app.upgrades[0]?.headers['x-forwarded-for']).toBe('127.0.0.1, 127.0.0.1');
    expect(primary.app.upgrades[0]?.headers['litefs-proxy-hop']).toBeUndefined();
    ws.socket.end();
    await within(ws.closed, 10_000, 'the close');
  });

  it("relays the app's refusal to switch protocols", async () => {
    const { replica } = await startCluster(cleanups);
    const ws = await within(openWebSocket(portOf(replica.url), '/ws-denied'), 10_000, 'the answer');
    expect(ws.status).toBe(403);
    expect(ws.head).toMatch(/connection: close/i);
    expect(await within(ws.rest(), 10_000, 'the body')).toBe('no socket\n');
  });

  it('answers a write Upgrade with 503 when no primary is known', async () => {
    const node = await startNode(cleanups, 'lonely', FakeBackend.replica(null), {
      config: { primaryRedirectTimeoutMs: 100, alwaysForward: ['/ws'] },
    });
    const ws = await within(openWebSocket(portOf(node.url), '/ws'), 10_000, 'the answer');
    expect(ws.status).toBe(503);
    expect(await within(ws.rest(), 10_000, 'the body')).toBe('Proxy error: no primary available\n');
    expect(node.app.upgrades).toHaveLength(0);
  });

  it('holds an Upgrade read with a newer __txid cookie until the replica catches up', async () => {
    const { replica } = await startCluster(cleanups, { replicaTXID: 1n });
    const waiting = replica.backend.nextTXIDWait();
    const pending = openWebSocket(portOf(replica.url), '/ws', { cookie: '__txid=0000000000000002' });
    await within(waiting, 10_000, 'the wait');
    expect(replica.app.upgrades).toHaveLength(0);
    replica.backend.setTXID('db', 2n);
    const ws = await within(pending, 10_000, 'the handshake');
    expect(ws.status).toBe(101);
    ws.socket.destroy();
  });
});
