import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { spawnInteractive, type InteractiveChild } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { events2 } from './event-client.js';
import { parseExposition, sampleValue } from './prom-text.js';

/*
 * End to end: a real `litefs mount` daemon (build dist/ first), a sqlite3
 * client writing through the mount, curl following /events over HTTP/1.1,
 * an h2c client following it too, and a Prometheus-style scrape.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  await destroyAllNodes();
});

function apiPort(node: LiteFSNode): number {
  const line = node.logLines().find((l) => l.msg === 'http: listening');
  if (line === undefined || typeof line.port !== 'number') throw new Error(`no "http: listening" line with a port:\n${node.runLog()}`);
  return line.port;
}

function curlEvents(url: string): InteractiveChild {
  const child = spawnInteractive('curl', ['-sSN', '--http1.1', `${url}/events`], { timeoutMs: 60_000 });
  cleanups.push(async () => {
    child.kill();
    await child.exited;
  });
  return child;
}

describe('observability of a running daemon', () => {
  it('3 sqlite3 transactions: /events delivers 3 tx lines (HTTP/1.1 and h2c), /metrics shows txid 3 and 3 commits', async () => {
    const node = await startNode({ prefix: 'litefs-obs-e2e-' });
    const url = `http://127.0.0.1:${apiPort(node)}`;

    const curl = curlEvents(url);
    expect(JSON.parse(await curl.waitForLine('"type":"init"'))).toEqual({ type: 'init', data: { isPrimary: true, hostname: '127.0.0.1' } });
    const h2 = await events2(url);
    cleanups.push(() => h2.close());
    expect(JSON.parse((await h2.reader!.next())!)).toEqual({ type: 'init', data: { isPrimary: true, hostname: '127.0.0.1' } });

    const db = node.path('app.db');
    const r = await runSqlite3(db, 'CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (randomblob(10000));\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const lines: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const line = await curl.waitForLine('"type":"tx"');
      lines.push(line);
      const e = JSON.parse(line) as { db: string; data: { txID: string; pageSize: number; commit: number; timestamp: string } };
      expect(e.db).toBe('app.db');
      expect(e.data.txID).toBe(`000000000000000${i}`);
      expect(e.data.pageSize).toBe(4096);
      expect(e.data.commit).toBeGreaterThanOrEqual(2);
      expect(e.data.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/);
      expect(await h2.reader!.next()).toBe(line);
    }
    // The last line's position is the database's: compare with the mount's -pos file.
    const pos = (await readFile(node.path('app.db-pos'), 'utf8')).trim();
    const last = JSON.parse(lines[2]!) as { data: { txID: string; postApplyChecksum: string } };
    expect(`${last.data.txID}/${last.data.postApplyChecksum}`).toBe(pos);

    const res = await request(`${url}/metrics`, { reset: true, headersTimeout: 10_000, bodyTimeout: 10_000 });
    expect(res.statusCode).toBe(200);
    const m = parseExposition(await res.body.text());
    expect(sampleValue(m, 'litefs_db_count')).toBe(1);
    expect(sampleValue(m, 'litefs_is_primary')).toBe(1);
    expect(sampleValue(m, 'litefs_db_txid', { db: 'app.db' })).toBe(3);
    expect(sampleValue(m, 'litefs_db_commit_count', { db: 'app.db' })).toBe(3);
    expect(sampleValue(m, 'litefs_db_ltx_count', { db: 'app.db' })).toBe(3);
    expect(sampleValue(m, 'litefs_db_ltx_bytes', { db: 'app.db' })).toBeGreaterThan(10000);
    expect(sampleValue(m, 'litefs_db_database_write_count', { db: 'app.db' })).toBeGreaterThanOrEqual(3);
    expect(sampleValue(m, 'litefs_db_journal_write_count', { db: 'app.db' })).toBeGreaterThanOrEqual(3);
    expect(sampleValue(m, 'litefs_db_wal_write_count', { db: 'app.db' })).toBe(0);
    expect(sampleValue(m, 'litefs_ts_event_subscriber_count')).toBe(2);

    await h2.close();
    expect((await node.stop()).code).toBe(0);
  });
});
