import { afterEach, describe, expect, it } from 'vitest';
import { checksumDatabaseFile, formatChecksum, readLtxHeader } from '../../src/ltx/index.js';
import type { DBChange } from '../../src/store/db.js';
import { eventHubFor } from '../../src/http/event-hub.js';
import { waitUntil } from '../helpers/wait.js';
import { events1, events2, type LineReader } from './event-client.js';
import { createTestNode, type TestNode } from './node.js';
import { TxWriter } from './tx-writer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function node(hostname: string): Promise<TestNode> {
  const n = await createTestNode({ hostname });
  cleanups.push(() => n.close());
  return n;
}

function writer(n: TestNode, name: string): TxWriter {
  const w = new TxWriter(n.store, name);
  cleanups.push(() => w.close());
  return w;
}

/** The line LiteFS would print for `change`, with the timestamp read back from its LTX file. */
async function expectedTxLine(change: DBChange, txid: string, checksum: string): Promise<string> {
  const header = await readLtxHeader(change.ltxPath);
  const ts = new Date(Number(header.timestamp)).toISOString().replace(/\.?0+Z$/, 'Z');
  return JSON.stringify({
    type: 'tx',
    db: change.db,
    data: { txID: txid, postApplyChecksum: checksum, pageSize: header.pageSize, commit: header.commit, timestamp: ts },
  });
}

async function expectLine(reader: LineReader, line: string): Promise<void> {
  expect(await reader.next()).toBe(line);
}

describe('GET /events', () => {
  it('HTTP/1.1: init, then one tx line per commit and drop, and primaryChange on role changes', async () => {
    const n = await node('node-a');
    const baseChange = n.store.listenerCount('change');
    const baseRole = n.monitor.listenerCount('primaryChange');

    const ev = await events1(n.url);
    cleanups.push(() => ev.close());
    expect(ev.status).toBe(200);
    expect(ev.contentType).toBe('application/json');
    await expectLine(ev.reader, '{"type":"init","data":{"isPrimary":false,"hostname":""}}');

    n.monitor.start();
    await expectLine(ev.reader, '{"type":"primaryChange","data":{"isPrimary":true,"hostname":"node-a"}}');

    const w = writer(n, 'app.db');
    const sqls = ['CREATE TABLE t(x)', 'INSERT INTO t VALUES (1)', "INSERT INTO t VALUES (randomblob(9000)), ('two')"];
    for (const [i, sql] of sqls.entries()) {
      const change = await w.commit(sql);
      const checksum = formatChecksum(await checksumDatabaseFile(w.db.databasePath));
      const line = await expectedTxLine(change, `000000000000000${i + 1}`, checksum);
      await expectLine(ev.reader, line);
    }
    const dropLine = await expectedTxLine(await w.drop(), '0000000000000004', '8000000000000000');
    expect(dropLine).toContain('"commit":0,');
    await expectLine(ev.reader, dropLine);

    await n.monitor.stop();
    await expectLine(ev.reader, '{"type":"primaryChange","data":{"isPrimary":false,"hostname":""}}');
    expect(ev.reader.pending).toBe(0);

    // The client going away removes every listener the stream added.
    expect(n.store.listenerCount('change')).toBe(baseChange + 1);
    await ev.close();
    await waitUntil(() => n.store.listenerCount('change') === baseChange, 'the change listener to be removed');
    expect(n.monitor.listenerCount('primaryChange')).toBe(baseRole);
  });

  it('HTTP/2 (h2c) and HTTP/1.1 subscribers receive the same lines', async () => {
    const n = await node('node-b');
    n.monitor.start();
    await n.monitor.waitReady();
    const h1 = await events1(n.url);
    cleanups.push(() => h1.close());
    const h2 = await events2(n.url);
    cleanups.push(() => h2.close());
    expect(h2.status).toBe(200);
    expect(h2.contentType).toBe('application/json');
    const init = '{"type":"init","data":{"isPrimary":true,"hostname":"node-b"}}';
    await expectLine(h1.reader, init);
    await expectLine(h2.reader!, init);

    const w = writer(n, 'x.db');
    for (let i = 0; i < 5; i++) await w.commit(i === 0 ? 'CREATE TABLE t(x)' : `INSERT INTO t VALUES (${i})`);
    for (let i = 1; i <= 5; i++) {
      const a = await h1.reader.next();
      const b = await h2.reader!.next();
      expect(b).toBe(a);
      expect(JSON.parse(a!)).toMatchObject({ type: 'tx', db: 'x.db', data: { txID: `000000000000000${i}` } });
    }
    const hub = eventHubFor(n);
    expect(hub.subscriberCount).toBe(2);
    await h2.close();
    await waitUntil(() => hub.subscriberCount === 1, 'the HTTP/2 subscriber to be dropped');
  });
});
