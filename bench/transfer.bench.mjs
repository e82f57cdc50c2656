// Import/export throughput (meant to live at bench/transfer.bench.mjs; it
// finds the repository root itself so it runs from either place).
//
// An in-process store and API server (no FUSE mount), a 100 MB database
// built natively with better-sqlite3, then: POST /import of the file over
// loopback HTTP (spool, LTX encode with LZ4, apply, fsync), GET /export
// back into a file (snapshot, stream, write). Baseline, same run: a native
// copy of the same file with fsync (fs.copyFile + fsync). Prints one JSON
// object as the last stdout line.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let root = path.dirname(fileURLToPath(import.meta.url));
while (!existsSync(path.join(root, 'package.json'))) root = path.dirname(root);
const dist = (p) => pathToFileURL(path.join(root, 'dist', p)).href;
const { Store } = await import(dist('store/store.js'));
const { ApiServer } = await import(dist('http/server.js'));
const { transferRoutesFor } = await import(dist('http/transfer.js'));
const { silentLogger } = await import(dist('internal/log.js'));
const require = createRequire(path.join(root, 'package.json'));
const Database = require('better-sqlite3');
const { request, Agent } = require('undici');

const RUNS = 3;
const work = await mkdtemp(path.join(os.tmpdir(), 'litefs-bench-transfer-'));
try {
  const src = path.join(work, 'src.db');
  const db = new Database(src);
  db.pragma('journal_mode = DELETE');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  db.prepare(
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) INSERT INTO t SELECT x, randomblob(1000) FROM c',
  ).run(103_000);
  db.close();
  const size = (await stat(src)).size;

  const store = new Store({ dataDir: path.join(work, 'data'), compress: true, logger: silentLogger });
  await store.open();
  store.setPrimary(true);
  const api = new ApiServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    nodeID: store.nodeIDString,
    routes: transferRoutesFor({ store }),
  });
  await api.listen();
  const base = `http://127.0.0.1:${api.address().port}`;
  const agent = new Agent();

  const best = async (fn) => {
    let min = Infinity;
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      await fn(i);
      min = Math.min(min, performance.now() - t);
    }
    return min;
  };

  const copyMs = await best(async (i) => {
    const dst = path.join(work, `copy-${i}.db`);
    await copyFile(src, dst);
    const fh = await open(dst, 'r+');
    await fh.sync();
    await fh.close();
    await rm(dst);
  });
  const importMs = await best(async () => {
    const r = await request(`${base}/import?name=bench.db`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-length': String(size) },
      body: createReadStream(src, { highWaterMark: 1 << 20 }),
    });
    await r.body.text();
    if (r.statusCode !== 200) throw new Error(`import: HTTP ${r.statusCode}`);
  });
  const exportMs = await best(async (i) => {
    const r = await request(`${base}/export?name=bench.db`, { dispatcher: agent });
    if (r.statusCode !== 200) throw new Error(`export: HTTP ${r.statusCode}`);
    const dst = path.join(work, `export-${i}.db`);
    const fh = await open(dst, 'w');
    for await (const chunk of r.body) await fh.write(chunk);
    await fh.sync();
    await fh.close();
    await rm(dst);
  });

  await agent.close();
  await api.close();
  await store.close();
  const mbps = (ms) => Math.round((size / 1e6 / (ms / 1000)) * 10) / 10;
  console.log(
    JSON.stringify({
      bytes: size,
      runs: RUNS,
      baseline_copy_fsync_MBps: mbps(copyMs),
      import_MBps: mbps(importMs),
      import_vs_copy: Math.round((copyMs / importMs) * 100) / 100,
      export_MBps: mbps(exportMs),
      export_vs_copy: Math.round((copyMs / exportMs) * 100) / 100,
    }),
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
