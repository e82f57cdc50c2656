// Import/export throughput (meant to live at bench/transfer.bench.mjs; it
// finds the repository root itself so it runs from either place).
//
// An in-process store and API server (no FUSE mount), a 100 MB database
// built natively with better-sqlite3, then: POST /import of the file over
// loopback HTTP (spool, LTX encode with LZ4, apply, fsync), GET /export
// back into a file (snapshot, stream, write). Baseline, same run: a native
// copy of the same file with fsync (fs.copyFile + fsync). Then the same
// import and export over TLS with mutual TLS and a bearer token
// (certificates made with openssl), next to the cleartext figures. Prints
// one JSON object as the last stdout line.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, writeFileSync } from 'node:fs';
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
const { NodeSecurity, nodeAgent } = await import(dist('http/index.js'));
const require = createRequire(path.join(root, 'package.json'));
const Database = require('better-sqlite3');
const { request, Agent } = require('undici');

const RUNS = 3;

/** A CA and one certificate for 127.0.0.1 (server and client use), made with openssl. */
function makeCerts(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bench-ca');
  ssl('req', ...ec, '-keyout', 'node-key.pem', '-out', 'node.csr', '-subj', '/CN=node');
  const ext = path.join(dir, 'node.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'node.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    'node.pem',
  );
  return { cert: path.join(dir, 'node.pem'), key: path.join(dir, 'node-key.pem'), ca: path.join(dir, 'ca.pem') };
}
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

  // The same routes behind TLS, mutual TLS and a token.
  const certs = makeCerts(work);
  const TOKEN = 'bench-token-0123456789';
  const serverSecurity = await NodeSecurity.load({ token: TOKEN, tls: { ...certs, clientAuth: true } });
  const tlsApi = new ApiServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    nodeID: store.nodeIDString,
    routes: transferRoutesFor({ store }),
    security: serverSecurity,
  });
  await tlsApi.listen();
  const tlsBase = `https://127.0.0.1:${tlsApi.address().port}`;
  const clientSecurity = await NodeSecurity.load({ token: TOKEN, tls: { ...certs, clientAuth: false } });
  const tlsAgent = nodeAgent(clientSecurity);

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
  const importOnce = async (url, dispatcher, headers) => {
    const r = await request(`${url}/import?name=bench.db`, {
      dispatcher,
      method: 'POST',
      headers: { ...headers, 'content-length': String(size) },
      body: createReadStream(src, { highWaterMark: 1 << 20 }),
    });
    await r.body.text();
    if (r.statusCode !== 200) throw new Error(`import: HTTP ${r.statusCode}`);
  };
  const exportOnce = async (url, dispatcher, headers, i) => {
    const r = await request(`${url}/export?name=bench.db`, { dispatcher, headers });
    if (r.statusCode !== 200) throw new Error(`export: HTTP ${r.statusCode}`);
    const dst = path.join(work, `export-${i}.db`);
    const fh = await open(dst, 'w');
    for await (const chunk of r.body) await fh.write(chunk);
    await fh.sync();
    await fh.close();
    await rm(dst);
  };
  const importMs = await best(() => importOnce(base, agent, {}));
  const exportMs = await best((i) => exportOnce(base, agent, {}, i));
  const tlsImportMs = await best(() => importOnce(tlsBase, tlsAgent, clientSecurity.headers()));
  const tlsExportMs = await best((i) => exportOnce(tlsBase, tlsAgent, clientSecurity.headers(), i));

  await agent.close();
  await tlsAgent.close();
  await api.close();
  await tlsApi.close();
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
      tls_import_MBps: mbps(tlsImportMs),
      tls_export_MBps: mbps(tlsExportMs),
      tls_import_vs_cleartext: Math.round((importMs / tlsImportMs) * 100) / 100,
      tls_export_vs_cleartext: Math.round((exportMs / tlsExportMs) * 100) / 100,
      tls_setup: 'TLS 1.3 (ECDSA P-256), mutual TLS, bearer token, HTTP/1.1 (undici)',
    }),
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
