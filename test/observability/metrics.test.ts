import { stat } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { realFS } from '../../src/store/sys.js';
import { listLtxFiles } from '../../src/store/ltx-files.js';
import { createTestNode, type TestNode, type TestNodeOptions } from './node.js';
import { parseExposition, sampleValue, type Family } from './prom-text.js';
import { TxWriter } from './tx-writer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function primary(hostname: string, opts: Partial<TestNodeOptions> = {}): Promise<TestNode> {
  const n = await createTestNode({ hostname, ...opts });
  cleanups.push(() => n.close());
  n.monitor.start();
  await n.monitor.waitReady();
  return n;
}

function writer(n: TestNode, name: string): TxWriter {
  const w = new TxWriter(n.store, name);
  cleanups.push(() => w.close());
  return w;
}

async function scrape(n: TestNode): Promise<{ families: Map<string, Family>; contentType: string }> {
  // reset: no keep-alive socket left for ApiServer.close() to wait out.
  const res = await request(`${n.url}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000, reset: true });
  const text = await res.body.text();
  expect(res.statusCode).toBe(200);
  return { families: parseExposition(text), contentType: String(res.headers['content-type']) };
}

async function ltxBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await listLtxFiles(realFS, dir)) total += (await stat(f.path)).size;
  return total;
}

/** LiteFS v0.5's metric names and types. */
const LITEFS_METRICS: Record<string, string> = {
  litefs_db_count: 'gauge',
  litefs_is_primary: 'gauge',
  litefs_subscriber_count: 'gauge',
  litefs_lag_seconds: 'gauge',
  litefs_db_txid: 'gauge',
  litefs_db_database_write_count: 'counter',
  litefs_db_journal_write_count: 'counter',
  litefs_db_wal_write_count: 'counter',
  litefs_db_shm_write_count: 'counter',
  litefs_db_commit_count: 'counter',
  litefs_db_ltx_count: 'gauge',
  litefs_db_ltx_bytes: 'gauge',
  litefs_db_ltx_reap_count: 'gauge',
  litefs_db_lag_seconds: 'gauge',
  litefs_http_stream_count: 'gauge',
  litefs_http_frame_send_count: 'counter',
};

describe('GET /metrics', () => {
  it('exposes LiteFS names, labels and values computed from the store after a known sequence of commits', async () => {
    const n = await primary('node-a');
    const a = writer(n, 'a.db');
    const b = writer(n, 'b.db');
    await a.commit('CREATE TABLE t(x)');
    await a.commit('INSERT INTO t VALUES (randomblob(20000))');
    await b.commit('CREATE TABLE u(y)');
    await a.commit('DELETE FROM t');

    const { families: m, contentType } = await scrape(n);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const [name, type] of Object.entries(LITEFS_METRICS)) {
      expect(m.get(name)?.type, name).toBe(type);
      expect(m.get(name)?.help, name).not.toBe('');
    }
    expect(sampleValue(m, 'litefs_db_count')).toBe(2);
    expect(sampleValue(m, 'litefs_is_primary')).toBe(1);
    expect(sampleValue(m, 'litefs_lag_seconds')).toBe(0);
    expect(sampleValue(m, 'litefs_subscriber_count')).toBe(0);
    expect(sampleValue(m, 'litefs_http_stream_count')).toBe(0);

    expect(sampleValue(m, 'litefs_db_txid', { db: 'a.db' })).toBe(3);
    expect(sampleValue(m, 'litefs_db_txid', { db: 'b.db' })).toBe(1);
    expect(sampleValue(m, 'litefs_db_commit_count', { db: 'a.db' })).toBe(3);
    expect(sampleValue(m, 'litefs_db_commit_count', { db: 'b.db' })).toBe(1);
    expect(a.databaseWrites).toBeGreaterThan(3);
    expect(sampleValue(m, 'litefs_db_database_write_count', { db: 'a.db' })).toBe(a.databaseWrites);
    expect(sampleValue(m, 'litefs_db_database_write_count', { db: 'b.db' })).toBe(b.databaseWrites);
    expect(sampleValue(m, 'litefs_db_journal_write_count', { db: 'a.db' })).toBe(a.journalWrites);
    expect(sampleValue(m, 'litefs_db_wal_write_count', { db: 'a.db' })).toBe(0);
    expect(sampleValue(m, 'litefs_db_shm_write_count', { db: 'a.db' })).toBe(0);
    expect(sampleValue(m, 'litefs_db_ltx_count', { db: 'a.db' })).toBe(3);
    expect(sampleValue(m, 'litefs_db_ltx_count', { db: 'b.db' })).toBe(1);
    const aBytes = await ltxBytes(a.db.ltxDir);
    expect(aBytes).toBeGreaterThan(20000);
    expect(sampleValue(m, 'litefs_db_ltx_bytes', { db: 'a.db' })).toBe(aBytes);
    expect(sampleValue(m, 'litefs_db_ltx_bytes', { db: 'b.db' })).toBe(await ltxBytes(b.db.ltxDir));
    expect(sampleValue(m, 'litefs_db_ltx_reap_count', { db: 'a.db' })).toBe(0);
    expect(sampleValue(m, 'litefs_db_lag_seconds', { db: 'a.db' })).toBe(0);
    expect(sampleValue(m, 'litefs_http_frame_send_count', { db: 'a.db', type: 'ltx' })).toBe(0);
    expect(sampleValue(m, 'litefs_http_frame_send_count', { db: 'a.db', type: 'ltx:snapshot' })).toBe(0);

    // Ours, and prom-client's process metrics.
    expect(sampleValue(m, 'litefs_ts_ready')).toBe(1);
    expect(sampleValue(m, 'litefs_ts_event_subscriber_count')).toBe(0);
    expect(m.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(m.get('nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    expect(m.get('nodejs_heap_size_total_bytes')?.samples.length).toBe(1);
  });

  it('reads the counters when scraped: later commits and stream frames show up on the next scrape', async () => {
    const n = await primary('node-a');
    const a = writer(n, 'a.db');
    await a.commit('CREATE TABLE t(x)');
    expect(sampleValue((await scrape(n)).families, 'litefs_db_commit_count', { db: 'a.db' })).toBe(1);
    await a.commit('INSERT INTO t VALUES (1)');
    a.db.stats.ltxFramesSent += 2;
    a.db.stats.snapshotFramesSent += 1;
    const m = (await scrape(n)).families;
    expect(sampleValue(m, 'litefs_db_commit_count', { db: 'a.db' })).toBe(2);
    expect(sampleValue(m, 'litefs_db_txid', { db: 'a.db' })).toBe(2);
    expect(sampleValue(m, 'litefs_db_ltx_count', { db: 'a.db' })).toBe(2);
    expect(sampleValue(m, 'litefs_http_frame_send_count', { db: 'a.db', type: 'ltx' })).toBe(2);
    expect(sampleValue(m, 'litefs_http_frame_send_count', { db: 'a.db', type: 'ltx:snapshot' })).toBe(1);
  });

  it('counts LTX files removed by retention and shrinks the LTX gauges to what is left', async () => {
    const n = await primary('node-a', { retentionMs: 1000 });
    const a = writer(n, 'a.db');
    await a.commit('CREATE TABLE t(x)');
    for (let i = 0; i < 4; i++) await a.commit(`INSERT INTO t VALUES (randomblob(${1000 * (i + 1)}))`);
    expect(sampleValue((await scrape(n)).families, 'litefs_db_ltx_count', { db: 'a.db' })).toBe(5);

    await n.store.enforceRetention(Date.now() + 60_000);
    const left = await listLtxFiles(realFS, a.db.ltxDir);
    expect(left.map((f) => path.basename(f.path))).toEqual(['0000000000000005-0000000000000005.ltx']);
    const m = (await scrape(n)).families;
    expect(sampleValue(m, 'litefs_db_ltx_reap_count', { db: 'a.db' })).toBe(4);
    expect(sampleValue(m, 'litefs_db_ltx_count', { db: 'a.db' })).toBe(1);
    expect(sampleValue(m, 'litefs_db_ltx_bytes', { db: 'a.db' })).toBe((await stat(left[0]!.path)).size);
    expect(sampleValue(m, 'litefs_db_commit_count', { db: 'a.db' })).toBe(5);
  });

  it('keeps one registry per node: two nodes in one process report their own databases', async () => {
    const x = await primary('node-x');
    const y = await primary('node-y');
    const wx = writer(x, 'only-x.db');
    await wx.commit('CREATE TABLE t(x)');
    await wx.commit('INSERT INTO t VALUES (1)');
    const mx = (await scrape(x)).families;
    const my = (await scrape(y)).families;
    expect(sampleValue(mx, 'litefs_db_count')).toBe(1);
    expect(sampleValue(mx, 'litefs_db_txid', { db: 'only-x.db' })).toBe(2);
    expect(sampleValue(my, 'litefs_db_count')).toBe(0);
    expect(my.get('litefs_db_txid')?.samples).toEqual([]);
    expect(my.get('process_cpu_user_seconds_total')?.samples.length).toBe(1);
  });
});
