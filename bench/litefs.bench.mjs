#!/usr/bin/env node
// litefs mount against native SQLite on the same disk, in the same run.
//
// A real `litefs mount` daemon (dist/cli/main.js, its own process) serves a
// mount; SQLite clients are separate python3 processes that run the same
// workload once on a directory next to the data directory (native) and once
// on the mount. Figures:
//   - single-row INSERT transactions/s, journal DELETE/TRUNCATE/PERSIST at
//     synchronous FULL and NORMAL, and WAL (goal: >= 35% of native);
//   - point-read queries/s on a warm ~100 MB database, one query per
//     transaction (autocommit, goal >= 60% of native) and 100 queries per
//     read transaction (goal: >= 90% of native);
//   - a bulk load of 1 M rows in one transaction (time and rows/s);
//   - a mixed workload (inserts, indexed and unindexed selects, autocommit
//     selects, updates, deletes, CREATE INDEX, VACUUM) in DELETE and WAL
//     mode, total time against native (goal: <= 2x) with each phase's ratio.
// A short second run with -fuse.debug counts the FUSE requests one
// transaction or one query costs; those explain the ratios.
//
//   npm run bench -- litefs        (LITEFS_BENCH_SECONDS=2 per measurement)
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clearFuseMounts, fuseMountsAt } from '../dist/fuse/index.js';
import { checksumDatabaseFile } from '../dist/ltx/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, '../dist/cli/main.js');
const SECONDS = Number(process.env.LITEFS_BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.LITEFS_BENCH_ROUNDS ?? 3);
const BULK_ROWS = Number(process.env.LITEFS_BENCH_BULK_ROWS ?? 1_000_000);
const READ_DB_ROWS = 100_000; // x ~1000-byte rows: ~100 MB
const log = (msg) => process.stderr.write(`litefs bench: ${msg}\n`);

// One python3 process per measurement; prints one JSON line.
const CLIENT = String.raw`
import json, os, random, sqlite3, sys, time
role, path = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
db = sqlite3.connect(path, timeout=30, isolation_level=None)
out = {}
if role == 'insert':
    mode, sync, seconds, limit = args[0], args[1], float(args[2]), int(args[3])
    assert db.execute('PRAGMA journal_mode=' + mode).fetchone()[0] == mode
    db.execute('PRAGMA synchronous=' + sync)
    db.execute('CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)')
    blob = os.urandom(100)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while n < limit and (n % 16 or time.perf_counter() < deadline):
        db.execute('INSERT INTO t(v) VALUES (?)', (blob,))
        n += 1
    out = {'tx': n, 'seconds': time.perf_counter() - start}
elif role == 'build':
    rows, size = int(args[0]), int(args[1])
    db.execute('PRAGMA journal_mode=delete')
    db.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)')
    start = time.perf_counter()
    db.execute('BEGIN')
    db.execute('WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?) INSERT INTO t(id, v) SELECT n, randomblob(?) FROM s', (rows, size))
    db.execute('COMMIT')
    out = {'rows': rows, 'seconds': time.perf_counter() - start, 'bytes': os.path.getsize(path) if not path.startswith('/proc') else 0}
elif role == 'reads':
    seconds, rows, per_tx = float(args[0]), int(args[1]), int(args[2])
    db.execute('SELECT sum(length(v)) FROM t').fetchone()  # warm
    rnd = random.Random(1)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    q = 'SELECT v FROM t WHERE id = ?'
    while time.perf_counter() < deadline:
        if per_tx > 1:
            db.execute('BEGIN')
        for _ in range(per_tx):
            db.execute(q, (rnd.randint(1, rows),)).fetchone()
        if per_tx > 1:
            db.execute('COMMIT')
        n += per_tx
    out = {'queries': n, 'seconds': time.perf_counter() - start}
elif role == 'mixed':
    # A day in the life of an application database, all phases timed:
    # inserts (single-row tx and batches), indexed and unindexed selects,
    # autocommit point selects, updates, deletes, CREATE INDEX, VACUUM.
    mode = args[0]
    db.execute('PRAGMA journal_mode=' + mode)
    rnd = random.Random(7)
    phases = {}
    def phase(name, fn):
        t = time.perf_counter(); fn(); phases[name] = time.perf_counter() - t
    db.execute('CREATE TABLE IF NOT EXISTS m(id INTEGER PRIMARY KEY, k INTEGER, s TEXT, v BLOB)')
    def single_inserts():
        for i in range(300):
            db.execute('INSERT INTO m(k, s, v) VALUES (?, ?, randomblob(200))', (rnd.randint(0, 10**6), 'row%d' % i))
    def batch_inserts():
        for b in range(20):
            db.execute('BEGIN')
            for i in range(1000):
                db.execute('INSERT INTO m(k, s, v) VALUES (?, ?, randomblob(200))', (rnd.randint(0, 10**6), 'b%d_%d' % (b, i)))
            db.execute('COMMIT')
    def autocommit_selects():
        for _ in range(3000):
            db.execute('SELECT s FROM m WHERE id = ?', (rnd.randint(1, 20000),)).fetchone()
    def unindexed_selects():
        for _ in range(30):
            db.execute('SELECT count(*) FROM m WHERE k BETWEEN ? AND ?', (rnd.randint(0, 10**6), rnd.randint(0, 10**6))).fetchone()
    def create_index():
        db.execute('CREATE INDEX IF NOT EXISTS m_k ON m(k)')
    def indexed_selects():
        for _ in range(3000):
            db.execute('SELECT count(*) FROM m WHERE k BETWEEN ? AND ?', (x := rnd.randint(0, 10**6), x + 1000)).fetchone()
    def updates():
        for _ in range(300):
            db.execute('UPDATE m SET v = randomblob(200) WHERE id = ?', (rnd.randint(1, 20000),))
        db.execute('UPDATE m SET s = s || ? WHERE k % 7 = 0', ('x',))
    def deletes():
        for _ in range(300):
            db.execute('DELETE FROM m WHERE id = ?', (rnd.randint(1, 20000),))
        db.execute('DELETE FROM m WHERE k % 5 = 0')
    def vacuum():
        db.execute('VACUUM')
    for name, fn in [('single_row_inserts', single_inserts), ('batch_inserts', batch_inserts), ('autocommit_selects', autocommit_selects),
                     ('unindexed_selects', unindexed_selects), ('create_index', create_index), ('indexed_selects', indexed_selects),
                     ('updates', updates), ('deletes', deletes), ('vacuum', vacuum), ('autocommit_selects_after', autocommit_selects)]:
        phase(name, fn)
    out = {'seconds': sum(phases.values()), 'phases': phases}
db.close()
print(json.dumps(out), flush=True)
`;

function run(cmd, args, { timeoutMs = 600_000, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      if (code !== 0) reject(new Error(`${cmd} ${args.slice(0, 4).join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

async function client(role, dbPath, ...args) {
  const out = await run('python3', ['-c', CLIENT, role, dbPath, ...args.map(String)]);
  return JSON.parse(out.trim().split('\n').pop());
}

/** A litefs mount daemon in its own process. */
async function startDaemon(root, name, extraArgs = []) {
  const dataDir = path.join(root, `${name}-data`);
  const mountDir = path.join(root, `${name}-mnt`);
  await mkdir(dataDir, { recursive: true });
  await mkdir(mountDir, { recursive: true });
  const config = path.join(root, `${name}.yml`);
  await writeFile(
    config,
    `data:\n  dir: ${JSON.stringify(dataDir)}\nfuse:\n  dir: ${JSON.stringify(mountDir)}\nhttp:\n  addr: "127.0.0.1:0"\nlease:\n  type: static\n  candidate: true\n  advertise-url: "http://127.0.0.1:20202"\nlog:\n  format: json\n`,
  );
  const logPath = path.join(root, `${name}.log`);
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(logPath, 'w');
  const child = spawn(process.execPath, [CLI, 'mount', '-config', config, ...extraArgs], {
    stdio: ['ignore', 'ignore', fd],
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
  });
  closeSync(fd);
  let exited = null;
  const done = new Promise((resolve) => child.on('close', (code, signal) => resolve((exited = { code, signal }))));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`litefs mount exited ${JSON.stringify(exited)}: ${await readFile(logPath, 'utf8')}`);
    if ((await fuseMountsAt(mountDir)).length > 0) {
      const lag = await readFile(path.join(mountDir, '.lag'), 'utf8').catch(() => null);
      if (lag !== null) break;
    }
    if (Date.now() > deadline) throw new Error('litefs mount not ready in 30 s');
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    dataDir,
    mountDir,
    logPath,
    path: (db) => path.join(mountDir, db),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await done;
      clearTimeout(t);
      await clearFuseMounts(mountDir);
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 0) => Math.round(x * 10 ** d) / 10 ** d;

/** Counts FUSE requests by opcode in the daemon's debug log after `offset` lines. */
async function fuseRequests(logPath) {
  // The daemon logs asynchronously: wait until the file stops growing.
  let prev = -1;
  for (let i = 0; i < 50; i++) {
    const size = (await readFile(logPath)).length;
    if (size === prev) break;
    prev = size;
    await new Promise((r) => setTimeout(r, 100));
  }
  const counts = {};
  for (const line of (await readFile(logPath, 'utf8')).split('\n')) {
    if (!line.includes('"fuse request"')) continue;
    const m = /"opcode":"([A-Z_]+)"/.exec(line);
    if (m) counts[m[1]] = (counts[m[1]] ?? 0) + 1;
  }
  return counts;
}

function diff(after, before, per) {
  const out = {};
  let total = 0;
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) {
      out[k] = round(d / per, 2);
      total += d;
    }
  }
  return { total: round(total / per, 2), by_opcode: out };
}

async function main() {
  const root = await mkdtemp(path.join(os.tmpdir(), 'litefs-bench-'));
  const nativeDir = path.join(root, 'native');
  await mkdir(nativeDir);
  let daemon = null;
  try {
    daemon = await startDaemon(root, 'node');
    log(`mount at ${daemon.mountDir}, native dir ${nativeDir} (same disk), ${ROUNDS} rounds x ${SECONDS} s`);

    // ---------------------------------------------------------- inserts
    const cases = [];
    for (const mode of ['delete', 'truncate', 'persist', 'wal']) for (const sync of ['FULL', 'NORMAL']) cases.push({ mode, sync });
    const inserts = {};
    for (const c of cases) {
      const key = `insert_${c.mode}_${c.sync.toLowerCase()}`;
      const nat = [];
      const lfs = [];
      for (let r = 0; r < ROUNDS; r++) {
        const a = await client('insert', path.join(nativeDir, `${key}.db`), c.mode, c.sync, SECONDS, 1_000_000);
        nat.push(a.tx / a.seconds);
        const b = await client('insert', daemon.path(`${key}.db`), c.mode, c.sync, SECONDS, 1_000_000);
        lfs.push(b.tx / b.seconds);
      }
      const native = median(nat);
      const litefs = median(lfs);
      inserts[key] = {
        unit: 'tx/s',
        litefs: round(litefs),
        native: round(native),
        ratio: round(litefs / native, 3),
        goal: 0.35,
        met: litefs / native >= 0.35,
      };
      log(`${key}: litefs ${round(litefs)} tx/s, native ${round(native)} tx/s, ratio ${round(litefs / native, 3)}`);
    }

    // ------------------------------------------------------------ reads
    await client('build', path.join(nativeDir, 'reads.db'), READ_DB_ROWS, 1000);
    await client('build', daemon.path('reads.db'), READ_DB_ROWS, 1000);
    const reads = {};
    for (const perTx of [1, 100]) {
      const key = perTx === 1 ? 'point_read_autocommit' : 'point_read_100_per_tx';
      const nat = [];
      const lfs = [];
      for (let r = 0; r < ROUNDS; r++) {
        const a = await client('reads', path.join(nativeDir, 'reads.db'), SECONDS, READ_DB_ROWS, perTx);
        nat.push(a.queries / a.seconds);
        const b = await client('reads', daemon.path('reads.db'), SECONDS, READ_DB_ROWS, perTx);
        lfs.push(b.queries / b.seconds);
      }
      const native = median(nat);
      const litefs = median(lfs);
      reads[key] = {
        unit: 'queries/s',
        litefs: round(litefs),
        native: round(native),
        ratio: round(litefs / native, 3),
        goal: perTx === 1 ? 0.6 : 0.9,
        met: litefs / native >= (perTx === 1 ? 0.6 : 0.9),
      };
      log(`${key}: litefs ${round(litefs)} q/s, native ${round(native)} q/s, ratio ${round(litefs / native, 3)}`);
    }

    // ---------------------------------------------------- mixed workload
    const mixed = {};
    for (const mode of ['delete', 'wal']) {
      const nat = [];
      const lfs = [];
      let phasesNative = null;
      let phasesLitefs = null;
      for (let r = 0; r < ROUNDS; r++) {
        const a = await client('mixed', path.join(nativeDir, `mixed_${mode}_${r}.db`), mode);
        nat.push(a.seconds);
        phasesNative = a.phases;
        const b = await client('mixed', daemon.path(`mixed_${mode}_${r}.db`), mode);
        lfs.push(b.seconds);
        phasesLitefs = b.phases;
      }
      const native = median(nat);
      const litefs = median(lfs);
      const phaseRatios = Object.fromEntries(
        Object.keys(phasesLitefs).map((k) => [k, round(phasesLitefs[k] / Math.max(phasesNative[k], 1e-6), 2)]),
      );
      mixed[`mixed_${mode}`] = {
        unit: 'seconds (lower is better)',
        litefs: round(litefs, 3),
        native: round(native, 3),
        time_vs_native: round(litefs / native, 2),
        goal_time_vs_native_max: 2.0,
        met: litefs / native <= 2.0,
        phase_time_vs_native_last_round: phaseRatios,
      };
      log(
        `mixed workload (${mode}): litefs ${round(litefs, 3)} s, native ${round(native, 3)} s, ${round(litefs / native, 2)}x native time`,
      );
    }

    // -------------------------------------------------------- bulk load
    const bn = await client('build', path.join(nativeDir, 'bulk.db'), BULK_ROWS, 100);
    const bl = await client('build', daemon.path('bulk.db'), BULK_ROWS, 100);
    const bulk = {
      rows: BULK_ROWS,
      unit: 'seconds',
      litefs: round(bl.seconds, 2),
      native: round(bn.seconds, 2),
      ratio: round(bn.seconds / bl.seconds, 3),
      goal: 0.7,
      met: bn.seconds / bl.seconds >= 0.7,
      litefs_rows_per_s: round(BULK_ROWS / bl.seconds),
      native_rows_per_s: round(BULK_ROWS / bn.seconds),
      database_bytes: bl.bytes,
    };
    log(`bulk load ${BULK_ROWS} rows: litefs ${bulk.litefs} s, native ${bulk.native} s`);
    // The LTX chain agrees with the file it describes (sanity, not timed).
    const pos = (await readFile(daemon.path('bulk.db-pos'), 'utf8')).trim();
    const sum = await checksumDatabaseFile(path.join(daemon.dataDir, 'dbs', 'bulk.db', 'database'));
    bulk.checksum_matches_pos = pos.endsWith(sum.toString(16).padStart(16, '0'));
    await daemon.stop();
    daemon = null;

    // --------------------------------------- FUSE requests per operation
    const dbg = await startDaemon(root, 'debug', ['-fuse.debug', '-debug']);
    daemon = dbg;
    const perTx = {};
    const N = 50;
    for (const c of cases) {
      const key = `insert_${c.mode}_${c.sync.toLowerCase()}`;
      await client('insert', dbg.path(`${key}.db`), c.mode, c.sync, 60, 1); // create table, set mode
      const before = await fuseRequests(dbg.logPath);
      await client('insert', dbg.path(`${key}.db`), c.mode, c.sync, 60, N);
      perTx[key] = diff(await fuseRequests(dbg.logPath), before, N);
    }
    await client('build', dbg.path('reads.db'), 1000, 1000);
    for (const per of [1, 100]) {
      await client('reads', dbg.path('reads.db'), 0.01, 1000, per);
      const before = await fuseRequests(dbg.logPath);
      const r = await client('reads', dbg.path('reads.db'), 1, 1000, per);
      perTx[per === 1 ? 'point_read_autocommit' : 'point_read_100_per_tx'] = {
        ...diff(await fuseRequests(dbg.logPath), before, r.queries),
        note: 'per query, including opening the connection',
      };
    }
    await dbg.stop();
    daemon = null;

    const goals = {
      inserts_35pct_of_native_every_mode: Object.values(inserts).every((x) => x.met),
      autocommit_reads_60pct_of_native: reads.point_read_autocommit.met,
      reads_100_per_tx_90pct_of_native: reads.point_read_100_per_tx.met,
      bulk_load_70pct_of_native: bulk.met,
      mixed_at_most_2x_native_time: Object.values(mixed).every((x) => x.met),
    };
    const result = {
      bench: 'litefs',
      seconds_per_measurement: SECONDS,
      rounds: ROUNDS,
      client: 'python3 sqlite3 (separate process), same workload natively and on the mount',
      inserts,
      reads,
      mixed,
      bulk_load: bulk,
      fuse_requests_per_operation: perTx,
      goals,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    if (daemon) await daemon.stop().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

await main();
