import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { events1 } from './event-client.js';
import { createTestNode, type TestNode } from './node.js';
import { parseExposition, sampleValue, type Family } from './prom-text.js';
import { TxWriter } from './tx-writer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function scrape(n: TestNode): Promise<Map<string, Family>> {
  const res = await request(`${n.url}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000, reset: true });
  expect(res.statusCode).toBe(200);
  return parseExposition(await res.body.text());
}

describe('observability on a replica (real replication in-process)', () => {
  it('applied transactions produce the same tx lines as on the primary; metrics tell primary and replica apart', async () => {
    const p = await createTestNode({ hostname: 'node-a' });
    cleanups.push(() => p.close());
    p.monitor.start();
    await p.monitor.waitReady();
    const w = new TxWriter(p.store, 'app.db');
    cleanups.push(() => w.close());
    await w.commit('CREATE TABLE t(x)');

    const r = await createTestNode({ hostname: 'node-b', primaryURL: p.url, primaryHostname: 'node-a' });
    cleanups.push(() => r.close());
    r.monitor.start();
    await r.monitor.waitReady();
    await waitUntil(() => r.store.db('app.db')?.pos.txid === 1n, 'the replica to catch up');

    const pe = await events1(p.url);
    cleanups.push(() => pe.close());
    const re = await events1(r.url);
    cleanups.push(() => re.close());
    expect(await pe.reader.next()).toBe('{"type":"init","data":{"isPrimary":true,"hostname":"node-a"}}');
    expect(await re.reader.next()).toBe('{"type":"init","data":{"isPrimary":false,"hostname":"node-a"}}');

    for (let i = 1; i <= 3; i++) await w.commit(`INSERT INTO t VALUES (${i})`);
    for (let i = 2; i <= 4; i++) {
      const onPrimary = await pe.reader.next();
      expect(JSON.parse(onPrimary!)).toMatchObject({ type: 'tx', db: 'app.db', data: { txID: `000000000000000${i}` } });
      // Same transaction, same LTX header: byte-identical lines.
      expect(await re.reader.next()).toBe(onPrimary);
    }

    const pm = await scrape(p);
    const rm = await scrape(r);
    expect(sampleValue(pm, 'litefs_is_primary')).toBe(1);
    expect(sampleValue(rm, 'litefs_is_primary')).toBe(0);
    expect(sampleValue(pm, 'litefs_subscriber_count')).toBe(1);
    expect(sampleValue(pm, 'litefs_http_stream_count')).toBe(1);
    expect(sampleValue(rm, 'litefs_subscriber_count')).toBe(0);
    expect(sampleValue(rm, 'litefs_db_txid', { db: 'app.db' })).toBe(4);
    expect(sampleValue(pm, 'litefs_db_txid', { db: 'app.db' })).toBe(4);
    // Applies are not local commits and no client wrote through the replica.
    expect(sampleValue(pm, 'litefs_db_commit_count', { db: 'app.db' })).toBe(4);
    expect(sampleValue(rm, 'litefs_db_commit_count', { db: 'app.db' })).toBe(0);
    expect(sampleValue(rm, 'litefs_db_database_write_count', { db: 'app.db' })).toBe(0);
    expect(sampleValue(rm, 'litefs_db_ltx_count', { db: 'app.db' })).toBeGreaterThanOrEqual(1);
    const applyLag = sampleValue(rm, 'litefs_db_lag_seconds', { db: 'app.db' });
    expect(applyLag).toBeGreaterThanOrEqual(0);
    expect(applyLag).toBeLessThan(60);
    expect(sampleValue(pm, 'litefs_db_lag_seconds', { db: 'app.db' })).toBe(0);
    const lag = sampleValue(rm, 'litefs_lag_seconds');
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(60);
    expect(sampleValue(rm, 'litefs_ts_ready')).toBe(1);
    expect(sampleValue(rm, 'litefs_ts_event_subscriber_count')).toBe(1);

    // The replica loses its primary: primaryChange with no hostname.
    await pe.close();
    await p.close();
    expect(await re.reader.next()).toBe('{"type":"primaryChange","data":{"isPrimary":false,"hostname":""}}');
  });
});
