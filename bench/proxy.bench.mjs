// HTTP proxy throughput and latency, on loopback, every figure next to the
// same request sent straight to the app in the same run.
//
//   npm run bench -- proxy
//
// Processes (each its own event loop, as in a real deployment):
//   app      node:http, answers GET with 2 bytes, POST with the body size
//   primary  proxy in front of app, fake backend "primary" (adds __txid)
//   replica  proxy in front of app, fake backend "replica" → primary's proxy
//   bench    this process: undici keep-alive client
// Prints one JSON object as the last stdout line.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const role = process.argv[2];

if (role === 'app') {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
      return;
    }
    let n = 0;
    req.on('data', (d) => (n += d.length));
    req.on('end', () => {
      const body = String(n);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n'));
} else if (role === 'proxy') {
  const [, , , target, kind, primaryURL] = process.argv;
  const { createProxyServer } = await import(pathToFileURL(join(here, '..', 'dist', 'http', 'proxy', 'index.js')).href);
  const isPrimary = kind === 'primary';
  const backend = {
    isPrimary: () => isPrimary,
    primaryProxyURL: () => (isPrimary ? null : primaryURL),
    waitForPrimary: async () => {},
    txid: () => 5n,
    waitForTXID: async () => true,
    lagMs: () => 0,
  };
  const proxy = createProxyServer(
    {
      enabled: true,
      addr: '127.0.0.1:0',
      target,
      db: 'db',
      debug: false,
      passthrough: [],
      alwaysForward: [],
      maxLagMs: 10_000,
      primaryRedirectTimeoutMs: 5_000,
      readTimeoutMs: 0,
      readHeaderTimeoutMs: 10_000,
      writeTimeoutMs: 0,
      idleTimeoutMs: 60_000,
    },
    backend,
  );
  await proxy.listen();
  process.on('SIGTERM', () => {
    void proxy.close().then(() => process.exit(0));
  });
  process.stdout.write(JSON.stringify({ port: proxy.address().port }) + '\n');
} else {
  await main();
}

function startRole(args) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, port: JSON.parse(out.slice(0, nl)).port });
    });
    child.on('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

async function main() {
  const { Pool } = await import('undici');
  const children = [];
  try {
    const app = await startRole(['app']);
    children.push(app.child);
    const appTarget = `127.0.0.1:${app.port}`;
    const primary = await startRole(['proxy', appTarget, 'primary', '']);
    children.push(primary.child);
    const replica = await startRole(['proxy', appTarget, 'replica', `http://127.0.0.1:${primary.port}`]);
    children.push(replica.child);

    const DURATION_MS = 2_000;
    const WARMUP_MS = 500;
    const postBody = Buffer.alloc(1024, 0x61);

    async function run(port, method, concurrency) {
      const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, keepAliveTimeout: 60_000 });
      const lat = [];
      let errors = 0;
      let measuring = false;
      let stop = false;
      const worker = async () => {
        while (!stop) {
          const t0 = process.hrtime.bigint();
          try {
            const { statusCode, body } = await pool.request({
              path: '/item',
              method,
              body: method === 'POST' ? postBody : undefined,
              headers: method === 'POST' ? { 'content-type': 'application/octet-stream' } : undefined,
            });
            await body.dump();
            if (statusCode !== 200) errors++;
          } catch {
            errors++;
          }
          if (measuring) lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      };
      const workers = Array.from({ length: concurrency }, worker);
      await new Promise((r) => setTimeout(r, WARMUP_MS));
      measuring = true;
      const t0 = process.hrtime.bigint();
      await new Promise((r) => setTimeout(r, DURATION_MS));
      measuring = false;
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      stop = true;
      await Promise.all(workers);
      await pool.close();
      lat.sort((a, b) => a - b);
      const pct = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] * 1000) / 1000;
      return { rps: Math.round(lat.length / elapsed), p50Ms: pct(0.5), p99Ms: pct(0.99), requests: lat.length, errors };
    }

    const ratio = (a, b) => Math.round((a / b) * 100) / 100;
    const scenarios = {};
    for (const concurrency of [1, 32]) {
      const getDirect = await run(app.port, 'GET', concurrency);
      const getProxy = await run(replica.port, 'GET', concurrency);
      const postDirect = await run(app.port, 'POST', concurrency);
      const postPrimaryProxy = await run(primary.port, 'POST', concurrency);
      const postForwarded = await run(replica.port, 'POST', concurrency);
      scenarios[`concurrency${concurrency}`] = {
        getDirect,
        getViaProxy: getProxy,
        getRpsRatio: ratio(getProxy.rps, getDirect.rps),
        getP50Ratio: ratio(getProxy.p50Ms, getDirect.p50Ms),
        postDirect,
        postViaPrimaryProxy: postPrimaryProxy,
        postForwardedReplicaToPrimary: postForwarded,
        postPrimaryProxyRpsRatio: ratio(postPrimaryProxy.rps, postDirect.rps),
        postForwardedRpsRatio: ratio(postForwarded.rps, postDirect.rps),
        postForwardedP50Ratio: ratio(postForwarded.p50Ms, postDirect.p50Ms),
      };
    }
    const result = {
      bench: 'proxy',
      note: 'loopback; app, primary proxy, replica proxy and client are separate processes sharing the machine; ratios < 1 for rps and > 1 for latency are the proxy cost',
      cpus: os.cpus().length,
      durationMsPerRun: DURATION_MS,
      postBodyBytes: postBody.length,
      ...scenarios,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}
