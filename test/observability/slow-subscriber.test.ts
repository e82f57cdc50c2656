import http2 from 'node:http2';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENT_BUFFER_SIZE, eventHubFor } from '../../src/http/event-hub.js';
import { withTimeout } from '../helpers/wait.js';
import { events1, events2 } from './event-client.js';
import { createTestNode } from './node.js';
import { parseExposition, sampleValue } from './prom-text.js';
import { TxWriter } from './tx-writer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

describe('a subscriber that falls behind', () => {
  it('is disconnected once 1024 events wait for it; commits and the other subscribers carry on', async () => {
    const n = await createTestNode({ hostname: 'node-a' });
    cleanups.push(() => n.close());
    n.monitor.start();
    await n.monitor.waitReady();
    const hub = eventHubFor(n);

    const fast = await events1(n.url);
    cleanups.push(() => fast.close());
    expect(JSON.parse((await fast.reader.next())!)).toMatchObject({ type: 'init' });
    // An h2 client that grants a 1 KiB window and never reads: the server's
    // writes back up at once, as with a socket that does not drain.
    const slow = await events2(n.url, { initialWindowSize: 1024, paused: true });
    cleanups.push(() => slow.close());
    const slowClosed = new Promise<void>((resolve) => slow.stream.once('close', () => resolve()));
    expect(hub.subscriberCount).toBe(2);

    const w = new TxWriter(n.store, 'busy.db');
    cleanups.push(() => w.close());
    await w.commit('CREATE TABLE t(x)');
    let commits = 1;
    const started = Date.now();
    while (hub.slowDisconnects === 0 && commits < 20 * EVENT_BUFFER_SIZE && Date.now() - started < 90_000) {
      await w.commit(`INSERT INTO t VALUES (${commits})`);
      commits++;
    }
    expect(hub.slowDisconnects).toBe(1);
    // It was given the full buffer before being dropped.
    expect(commits).toBeGreaterThan(EVENT_BUFFER_SIZE);
    await withTimeout(slowClosed, 10_000, 'the slow subscriber to be disconnected');
    expect(slow.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(hub.subscriberCount).toBe(1);

    // Commits go on; the subscriber that keeps reading missed nothing.
    for (let i = 0; i < 10; i++) await w.commit(`INSERT INTO t VALUES (-${i})`);
    const total = commits + 10;
    expect(w.db.pos.txid).toBe(BigInt(total));
    for (let txid = 1; txid <= total; txid++) {
      const line = await fast.reader.next();
      expect(JSON.parse(line!)).toMatchObject({ type: 'tx', db: 'busy.db', data: { txID: txid.toString(16).padStart(16, '0') } });
    }

    const res = await request(`${n.url}/metrics`, { reset: true });
    const m = parseExposition(await res.body.text());
    expect(sampleValue(m, 'litefs_ts_event_slow_disconnect_count')).toBe(1);
    expect(sampleValue(m, 'litefs_ts_event_subscriber_count')).toBe(1);
    expect(sampleValue(m, 'litefs_db_commit_count', { db: 'busy.db' })).toBe(total);
  });
});
