#!/usr/bin/env node
// Runs every bench/*.bench.mjs in its own process (so one benchmark's heap,
// page cache warm-up or mounts cannot colour the next), collects the JSON
// each prints as its last stdout line, and writes them to one results file.
//
//   npm run bench            all benchmarks
//   npm run bench -- ltx     only files whose name contains "ltx"
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = (await readdir(here))
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

function runOne(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, file)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve({ ok: code === 0, result: JSON.parse(last) });
      } catch {
        resolve({ ok: false, error: `exit ${code}, no JSON result`, output: out.slice(-2000) });
      }
    });
  });
}

const results = {};
let failed = 0;
for (const file of files) {
  const name = file.replace(/\.bench\.mjs$/, '');
  process.stderr.write(`bench: ${name} ...\n`);
  const r = await runOne(file);
  if (!r.ok) failed++;
  results[name] = r.ok ? r.result : r;
}

const report = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), node: process.version },
  results,
};
const outDir = join(here, 'results');
await mkdir(outDir, { recursive: true });
const stamp = report.date.replace(/[:.]/g, '-');
await writeFile(join(outDir, `bench-${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
await writeFile(join(outDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exitCode = failed === 0 ? 0 : 1;
