import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checksumDatabaseFile, formatChecksum, hex64 } from '../../src/ltx/index.js';
import { Cluster, type ClusterNode } from '../helpers/cluster.js';
import { spawnPythonSqlite } from '../helpers/sqlite-clients.js';
import type { InteractiveChild } from '../helpers/processes.js';
import { litefs, makeDatabase, querySqlite, tempDir } from './helpers.js';

/*
 * Imports in a two-node cluster (static lease, node0 primary): SQLite
 * connections that stay open across imports, on the primary and on the
 * replica, see each import's content and schema at once; a replica refuses
 * imports with the primary's whereabouts; any node exports.
 */

let work: string;
let cluster: Cluster;
let primary: ClusterNode;
let replica: ClusterNode;
const readers: InteractiveChild[] = [];

beforeAll(async () => {
  work = await tempDir('litefs-transfer-cluster-');
  cluster = await Cluster.create({ size: 2, lease: { type: 'static' } });
  await cluster.start();
  primary = await cluster.findPrimary();
  replica = cluster.node(1);
  expect(primary.index).toBe(0);
});

afterAll(async () => {
  for (const r of readers) {
    r.kill();
    await r.exited;
  }
  await cluster?.destroy();
  await rm(work, { recursive: true, force: true });
});

const READER = String.raw`
import json
print('ready', flush=True)
for line in sys.stdin:
    q = line.strip()
    if q == 'quit':
        break
    try:
        print('ok ' + json.dumps(db.execute(q).fetchall()), flush=True)
    except Exception as e:
        print('err ' + str(e), flush=True)
`;

/** An open connection (python sqlite3, autocommit) that answers one query per line. */
async function openReader(file: string): Promise<(sql: string) => Promise<string>> {
  const child = spawnPythonSqlite(file, READER, { busyTimeoutMs: 5000, timeoutMs: 300_000 });
  readers.push(child);
  await child.waitForLine('ready');
  return async (sql) => {
    child.writeLine(sql);
    return child.waitForLine(/^(ok|err) /);
  };
}

async function importFile(node: ClusterNode, file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return litefs(['import', '-name', 'app.db', '-url', node.url, file]);
}

/** Sets the raw change counter (and version-valid-for) and schema cookie of a database file. */
async function setCounters(file: string, counter: number, cookie: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(counter);
    await fh.write(b, 0, 4, 24);
    await fh.write(b, 0, 4, 92);
    b.writeUInt32BE(cookie);
    await fh.write(b, 0, 4, 40);
  } finally {
    await fh.close();
  }
}

it('open connections on the primary and the replica see every import, schema included', async () => {
  const a = path.join(work, 'a.db');
  const b = path.join(work, 'b.db');
  const c = path.join(work, 'c.db');
  // Same shape (same page count, no freelist), different schema and data.
  await makeDatabase(a, { table: 't', column: 'v', rows: 300, blob: 200 });
  await makeDatabase(b, { table: 'u', column: 'w', rows: 300, blob: 200 });
  await makeDatabase(c, { table: 't', column: 'v', rows: 300, blob: 200 });
  expect((await stat(a)).size).toBe((await stat(b)).size);
  expect((await stat(a)).size).toBe((await stat(c)).size);

  expect((await importFile(primary, a)).code).toBe(0);
  await cluster.waitConverged('app.db');
  const onPrimary = await openReader(primary.path('app.db'));
  const onReplica = await openReader(replica.path('app.db'));
  const aFirst = await querySqlite(a, 'SELECT hex(substr(v, 1, 8)) FROM t WHERE id = 1');
  for (const read of [onPrimary, onReplica]) {
    expect(await read('SELECT count(*) FROM t')).toBe('ok [[300]]');
    expect(await read('SELECT hex(substr(v, 1, 8)) FROM t WHERE id = 1')).toBe(`ok [["${aFirst[0]}"]]`);
  }

  // B carries exactly the counters the connections cached from A, so only
  // the import's bump can tell them the file changed.
  const afterA = await readFile(primary.node.databaseFile('app.db'));
  await setCounters(b, afterA.readUInt32BE(24), afterA.readUInt32BE(40));
  const imp = await importFile(primary, b);
  expect(imp.code, imp.stderr).toBe(0);
  await cluster.waitConverged('app.db');
  const bFirst = await querySqlite(b, 'SELECT hex(substr(w, 1, 8)) FROM u WHERE id = 1');
  for (const read of [onPrimary, onReplica]) {
    expect(await read('SELECT count(*) FROM u')).toBe('ok [[300]]');
    expect(await read('SELECT hex(substr(w, 1, 8)) FROM u WHERE id = 1')).toBe(`ok [["${bFirst[0]}"]]`);
    expect(await read('SELECT count(*) FROM t')).toBe('err no such table: t');
  }

  // A third import of the same shape: the counters keep moving forward.
  const afterB = await readFile(primary.node.databaseFile('app.db'));
  expect(afterB.readUInt32BE(24)).toBe(afterA.readUInt32BE(24) + 1);
  expect(afterB.readUInt32BE(40)).toBe(afterA.readUInt32BE(40) + 1);
  await setCounters(c, afterB.readUInt32BE(24), afterB.readUInt32BE(40));
  expect((await importFile(primary, c)).code).toBe(0);
  await cluster.waitConverged('app.db');
  const cFirst = await querySqlite(c, 'SELECT hex(substr(v, 1, 8)) FROM t WHERE id = 1');
  for (const read of [onPrimary, onReplica]) {
    expect(await read('SELECT hex(substr(v, 1, 8)) FROM t WHERE id = 1')).toBe(`ok [["${cFirst[0]}"]]`);
    expect(await read('PRAGMA integrity_check')).toBe('ok [["ok"]]');
  }
  expect(await primary.fileChecksum('app.db')).toBe(await replica.fileChecksum('app.db'));
});

it('a replica refuses an import with the reason and the primary to use, and changes nothing', async () => {
  const file = path.join(work, 'r.db');
  await makeDatabase(file, { rows: 5, blob: 10 });
  const before = await replica.position('app.db');
  const r = await importFile(replica, file);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe(
    `litefs import: the node refused the import (HTTP 503): this node is not the primary; import on the primary (node0 at ${primary.url})\n`,
  );
  expect(await replica.position('app.db')).toBe(before);
  expect(await primary.position('app.db')).toBe(before);
});

it('exports from the replica a copy matching the replicated position', async () => {
  const out = path.join(work, 'from-replica.db');
  await writeFile(`${out}-journal`, 'stale journal');
  const pos = await replica.position('app.db');
  const r = await litefs(['export', '-name', 'app.db', '-url', replica.url, out]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(`app.db: exported to ${out} (${(await stat(out)).size} bytes); position ${pos}\n`);
  expect(`${pos!.slice(0, 17)}${formatChecksum(await checksumDatabaseFile(out))}`).toBe(pos);
  expect(hex64(await checksumDatabaseFile(out))).toBe(await primary.fileChecksum('app.db'));
  await expect(stat(`${out}-journal`)).rejects.toThrow(/ENOENT/);
});
