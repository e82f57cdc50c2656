#!/usr/bin/env node
// Cost of observability: a /metrics scrape and the /events encoding.
//
// Scrape: a real Store with DBS databases of FILES LTX files each (files of
// LTX names; the scrape only lists and stats them), behind the node's
// metrics registry. Figures, each next to a baseline from the same run:
//   cold_scrape_ms  first scrape: every LTX file is stat()ed once
//   warm_scrape_ms  median later scrape: one readdir per database, sizes cached
//     baseline naive_list_ms: readdir + stat of every file (what a scrape
//     without the size cache would cost each time)
//     baseline process_only_scrape_ms: a registry holding only prom-client's
//     default process metrics (the library's own floor)
// Events: encoding one tx event line (LiteFS key order, Go escaping, Go
// time format), baseline JSON.stringify of the same object.
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createMetricsRegistry } from '../dist/http/metrics-registry.js';
import { encodeEvent, txEvent } from '../dist/http/event-format.js';
import { Store } from '../dist/store/store.js';

const DBS = 10;
const FILES = 2000;
const WARM_RUNS = 21;
const EVENTS = 200_000;

const hex = (n) => n.toString(16).padStart(16, '0');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 3) => Number(x.toFixed(d));

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'litefs-bench-obs-'));
try {
  const store = new Store({ dataDir, compress: false });
  await store.open();
  store.setPrimary(true);
  for (let d = 0; d < DBS; d++) {
    const db = await store.ensureDB(`db${d}.db`);
    const body = Buffer.alloc(4096 + d);
    for (let i = 1; i <= FILES; i++) await writeFile(path.join(db.ltxDir, `${hex(i)}-${hex(i)}.ltx`), body);
  }
  const monitor = {
    isPrimary: true,
    primary: null,
    ready: true,
    leaser: { hostname: 'bench' },
    lagMs: () => 0,
    on() {},
    off() {},
  };
  const ctx = { store, monitor, streams: { subscriberCount: 0 }, mountDir: '/litefs', proxyURL: null };

  let t = performance.now();
  let files = 0;
  for (const db of store.databases()) {
    for (const name of await readdir(db.ltxDir)) {
      await stat(path.join(db.ltxDir, name));
      files++;
    }
  }
  const naiveListMs = performance.now() - t;

  const registry = createMetricsRegistry(ctx);
  t = performance.now();
  const text = await registry.metrics();
  const coldScrapeMs = performance.now() - t;
  if (!text.includes(`litefs_db_ltx_count{db="db0.db"} ${FILES}`)) throw new Error('scrape did not count the LTX files');
  const warm = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    t = performance.now();
    await registry.metrics();
    warm.push(performance.now() - t);
  }
  const warmScrapeMs = median(warm);

  const bare = new Registry();
  collectDefaultMetrics({ register: bare });
  await bare.metrics();
  const bareRuns = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    t = performance.now();
    await bare.metrics();
    bareRuns.push(performance.now() - t);
  }
  const processOnlyMs = median(bareRuns);

  const change = {
    kind: 'commit',
    db: 'app.db',
    pos: { txid: 0x1234n, postApplyChecksum: 0x8123456789abcdefn },
    pageSize: 4096,
    commit: 1000,
    timestamp: Date.UTC(2024, 0, 2, 3, 4, 5, 600),
    ltxPath: '/x',
  };
  let sink = 0;
  t = performance.now();
  for (let i = 0; i < EVENTS; i++) sink += encodeEvent(txEvent(change)).length;
  const encodeNs = ((performance.now() - t) * 1e6) / EVENTS;
  const plain = {
    type: 'tx',
    db: 'app.db',
    data: {
      txID: '0000000000001234',
      postApplyChecksum: '8123456789abcdef',
      pageSize: 4096,
      commit: 1000,
      timestamp: '2024-01-02T03:04:05.6Z',
    },
  };
  t = performance.now();
  for (let i = 0; i < EVENTS; i++) sink += JSON.stringify(plain).length;
  const stringifyNs = ((performance.now() - t) * 1e6) / EVENTS;
  if (sink === 0) throw new Error('unreachable');

  await store.close();
  console.log(
    JSON.stringify({
      ltx_files: files,
      databases: DBS,
      cold_scrape_ms: round(coldScrapeMs),
      warm_scrape_ms: round(warmScrapeMs),
      naive_list_ms: round(naiveListMs),
      warm_vs_naive_ratio: round(warmScrapeMs / naiveListMs),
      cold_vs_naive_ratio: round(coldScrapeMs / naiveListMs),
      process_only_scrape_ms: round(processOnlyMs),
      warm_vs_process_only_ratio: round(warmScrapeMs / processOnlyMs),
      tx_event_encode_ns: round(encodeNs, 1),
      json_stringify_ns: round(stringifyNs, 1),
      encode_vs_stringify_ratio: round(encodeNs / stringifyNs),
    }),
  );
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
