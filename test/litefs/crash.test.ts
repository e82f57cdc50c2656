import { cp, rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { spawnInteractive, type InteractiveChild } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { checkConsistency, type ChainEntry } from './chain.js';
import { JOURNAL_MODES } from './clients.js';

afterEach(destroyAllNodes);

/** At least 20 in CI; raise with LITEFS_CRASH_ITERATIONS for a longer soak. */
const ITERATIONS = Math.max(20, Number(process.env.LITEFS_CRASH_ITERATIONS ?? 20));
/** WAL mode's own run: at least 50 kills. */
const WAL_ITERATIONS = Math.max(50, Number(process.env.LITEFS_CRASH_WAL_ITERATIONS ?? 50));
/** Seed of the kill timings and workloads; printed so a failure can be replayed. */
const SEED = Number(process.env.LITEFS_CRASH_SEED ?? Date.now() % 1_000_000);
const SYNC_MODES = ['FULL', 'NORMAL', 'OFF'] as const;
/** Set LITEFS_CRASH_EVIDENCE=<dir> to keep a copy of the data dir as each crash left it. */
const EVIDENCE_DIR = process.env.LITEFS_CRASH_EVIDENCE;

/** mulberry32: small, seeded, good enough for timings. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/*
 * The writer: random transactions until the mount goes away. After each
 * COMMIT returns it prints "C <ids>" (flushed), so every id printed was
 * acknowledged as committed. Rolled-back rows get negative ids and must
 * never appear. Table `scratch` takes inserts and deletes (free-page churn)
 * and is not checked row by row.
 */
const WRITER = `
import random, sqlite3, sys
path, mode, sync, seed, base = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(seed)
db = sqlite3.connect(path, timeout=10, isolation_level=None)
db.execute('PRAGMA journal_mode=' + mode)
db.execute('PRAGMA synchronous=' + sync)
db.execute('PRAGMA wal_autocheckpoint=%d' % rnd.choice([10, 100, 1000]))
nid = base
try:
    while True:
        k = rnd.random()
        ids = []
        if k < 0.45:
            db.execute('BEGIN')
            db.execute('INSERT INTO t(id, v) VALUES (?, randomblob(?))', (nid, rnd.randint(10, 300)))
            ids = [nid]
            db.execute('COMMIT')
        elif k < 0.65:
            db.execute('BEGIN')
            for i in range(rnd.randint(2, 25)):
                db.execute('INSERT INTO t(id, v) VALUES (?, randomblob(?))', (nid + i, rnd.randint(500, 5000)))
                ids.append(nid + i)
            db.execute('COMMIT')
        elif k < 0.75:
            db.execute('BEGIN')
            db.execute('INSERT INTO scratch(v) SELECT randomblob(2000) FROM t LIMIT 20')
            db.execute('DELETE FROM scratch WHERE id % 3 = ?', (rnd.randint(0, 2),))
            db.execute('COMMIT')
        elif k < 0.78:
            # A checkpoint of some kind (in rollback-journal modes a no-op).
            db.execute('PRAGMA wal_checkpoint(%s)' % rnd.choice(['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'])).fetchall()
        elif k < 0.85:
            db.execute('PRAGMA cache_size=2')
            db.execute('BEGIN')
            db.execute('UPDATE t SET v = randomblob(length(v) + 1) WHERE id % 5 = ?', (rnd.randint(0, 4),))
            for i in range(rnd.randint(5, 30)):
                db.execute('INSERT INTO t(id, v) VALUES (?, randomblob(3000))', (nid + i,))
                ids.append(nid + i)
            db.execute('COMMIT')
            db.execute('PRAGMA cache_size=-2000')
        else:
            db.execute('PRAGMA cache_size=%d' % rnd.choice([2, -2000]))
            db.execute('BEGIN')
            for i in range(rnd.randint(1, 20)):
                db.execute('INSERT INTO t(id, v) VALUES (?, randomblob(2000))', (-(nid + i),))
            db.execute('ROLLBACK')
            db.execute('PRAGMA cache_size=-2000')
            nid += 30
        print('C ' + ' '.join(map(str, ids)), flush=True)
        nid += len(ids)
except Exception as e:
    print('E ' + str(e).replace('\\n', ' '), flush=True)
`;

/*
 * WAL mode's other client: long read transactions (which pin a snapshot
 * and hold checkpoints back) and checkpoints of every kind, at random, in
 * its own process, until the mount goes away.
 */
const CHECKPOINTER = `
import random, sqlite3, sys, time
path, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
db = sqlite3.connect(path, timeout=10, isolation_level=None)
try:
    while True:
        if rnd.random() < 0.5:
            db.execute('BEGIN')
            db.execute('SELECT count(*), sum(length(v)) FROM t').fetchall()
            time.sleep(rnd.random() * 0.05)
            db.execute('COMMIT')
        else:
            db.execute('PRAGMA wal_checkpoint(%s)' % rnd.choice(['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'])).fetchall()
        time.sleep(rnd.random() * 0.02)
except Exception as e:
    print('E ' + str(e).replace('\\n', ' '), flush=True)
`;

interface WriterRun {
  child: InteractiveChild;
  committed: () => number[];
  commits: () => number;
}

function startWriter(node: LiteFSNode, db: string, mode: string, sync: string, seed: number, base: number): WriterRun {
  const child = spawnInteractive('python3', ['-u', '-c', WRITER, node.path(db), mode, sync, String(seed), String(base)], {
    timeoutMs: 60_000,
  });
  let out = '';
  child.child.stdout!.on('data', (d: string) => {
    out += d;
  });
  const lines = (): string[] => out.split('\n').filter((l) => l.startsWith('C'));
  return {
    child,
    committed: () =>
      lines().flatMap((l) =>
        l
          .slice(1)
          .trim()
          .split(' ')
          .filter((s) => s !== '')
          .map(Number),
      ),
    commits: () => lines().length,
  };
}

const verified = new Map<string, ChainEntry>();

async function verify(node: LiteFSNode, db: string, committed: Set<number>, context: string): Promise<void> {
  const r = await runSqlite3(node.path(db), 'PRAGMA integrity_check; SELECT id FROM t;', { busyTimeoutMs: 5000, timeoutMs: 60_000 });
  expect(r.stderr, context).toBe('');
  const [check, ...rows] = r.stdout.trim().split('\n');
  expect(check, context).toBe('ok');
  const present = new Set(rows.filter((s) => s !== '').map(Number));
  const missing = [...committed].filter((id) => !present.has(id));
  expect(missing.slice(0, 20), `${context}: acknowledged commits missing`).toEqual([]);
  const rolledBack = [...present].filter((id) => id < 0);
  expect(rolledBack.slice(0, 20), `${context}: rolled-back rows present`).toEqual([]);
  // Chain from TXID 1, every file verified, newest post-apply = file checksum = -pos.
  await checkConsistency(node, db, { cache: verified, inProcess: true });
}

interface CrashRunOptions {
  iterations: number;
  dbs: string[];
  /** Journal mode and synchronous setting of database `i` in iteration `it`. */
  mode(it: number, i: number): { mode: string; sync: string };
  /** Also run a checkpointer/long-reader process per database (WAL). */
  checkpointer: boolean;
  label: string;
}

async function crashRuns(opts: CrashRunOptions): Promise<void> {
  const rnd = prng(SEED);
  const node = await startNode();
  for (const db of opts.dbs) {
    const r = await runSqlite3(
      node.path(db),
      'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE TABLE scratch(id INTEGER PRIMARY KEY, v BLOB);',
    );
    expect(r.code).toBe(0);
  }
  const acknowledged = new Map<string, Set<number>>(opts.dbs.map((db) => [db, new Set<number>()]));
  let totalCommits = 0;
  const seen = { rollback: 0, reapply: 0, undo: 0, walCopied: 0, walDropped: 0 };
  for (let it = 0; it < opts.iterations; it++) {
    const writers = opts.dbs.map((db, i) => {
      const m = opts.mode(it, i);
      return startWriter(node, db, m.mode, m.sync, Math.floor(rnd() * 1e9), (it + 1) * 1_000_000);
    });
    const helpers = opts.checkpointer
      ? opts.dbs.map((db) =>
          spawnInteractive('python3', ['-u', '-c', CHECKPOINTER, node.path(db), String(Math.floor(rnd() * 1e9))], { timeoutMs: 60_000 }),
        )
      : [];
    try {
      // Let the writers get going, then kill the daemon at a random moment.
      const start = Date.now();
      while (writers.some((w) => w.commits() === 0) && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 400)));
      await node.kill();
      // Without the daemon every request fails (ENOTCONN); the clients stop.
      await Promise.all(
        [...writers.map((w) => w.child), ...helpers].map(async (c) => {
          const t = setTimeout(() => c.kill(), 15_000);
          await c.exited;
          clearTimeout(t);
        }),
      );
    } finally {
      for (const w of writers) w.child.kill();
      for (const h of helpers) h.kill();
    }
    writers.forEach((w, i) => {
      for (const id of w.committed()) acknowledged.get(opts.dbs[i]!)!.add(id);
      totalCommits += w.commits();
    });
    if (EVIDENCE_DIR !== undefined) {
      // The data directory as the crash left it, before recovery touches it.
      await rm(EVIDENCE_DIR, { recursive: true, force: true });
      await cp(node.dataDir, EVIDENCE_DIR, { recursive: true });
    }
    await node.start();
    const log = node.runLog();
    if (log.includes('rolled back hot journal')) seen.rollback++;
    if (log.includes('re-applied the newest LTX file')) seen.reapply++;
    if (log.includes('restored committed pages from the undo log')) seen.undo++;
    if (log.includes('copied recorded WAL transactions into the database file')) seen.walCopied++;
    if (log.includes('past the last recorded transaction') || log.includes('WAL holds no recorded transaction')) seen.walDropped++;
    for (const db of opts.dbs) await verify(node, db, acknowledged.get(db)!, `${opts.label} iteration ${it} (seed ${SEED}) ${db}`);
  }
  // The test exercised what it claims to.
  expect(totalCommits).toBeGreaterThan(opts.iterations * 2);
  for (const db of opts.dbs) expect(acknowledged.get(db)!.size).toBeGreaterThan(opts.iterations);
  console.log(
    `crash test (${opts.label}): ${opts.iterations} kills, ${totalCommits} acknowledged commits; restarts that rolled back a hot journal: ${seen.rollback}, ` +
      `re-applied the newest LTX: ${seen.reapply}, restored pages from the undo log: ${seen.undo}, copied WAL frames: ${seen.walCopied}, ` +
      `dropped unrecorded WAL frames: ${seen.walDropped} (seed ${SEED})`,
  );
  return;
}

describe('crash safety', () => {
  it(
    `SIGKILL of the daemon at random moments under two writers in every journal mode, ${ITERATIONS} times: every database recovers intact with every acknowledged commit (seed ${SEED})`,
    () =>
      crashRuns({
        iterations: ITERATIONS,
        dbs: ['crash-a.db', 'crash-b.db'],
        mode: (it, i) => ({
          mode: JOURNAL_MODES[(it + i) % JOURNAL_MODES.length]!,
          sync: SYNC_MODES[Math.floor(it / 3 + i) % 3]!,
        }),
        checkpointer: false,
        label: 'all modes',
      }),
    60_000 + ITERATIONS * 15_000,
  );

  it(
    `WAL: SIGKILL of the daemon during WAL writes, checkpoints and long reads, ${WAL_ITERATIONS} times: integrity, every acknowledged commit, chain intact (seed ${SEED})`,
    () =>
      crashRuns({
        iterations: WAL_ITERATIONS,
        dbs: ['wal-a.db', 'wal-b.db'],
        mode: (it, i) => ({ mode: 'wal', sync: SYNC_MODES[(it + i) % 3]! }),
        checkpointer: true,
        label: 'WAL',
      }),
    60_000 + WAL_ITERATIONS * 15_000,
  );
});
