import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { realFS } from '../../src/store/sys.js';
import {
  JournalReader,
  fileHandleSource,
  isHotJournalFile,
  journalRecordChecksum,
  rollbackJournalFile,
  type JournalHeader,
  type JournalStats,
} from '../../src/store/journal.js';

const script = fileURLToPath(new URL('./sqlite-crash.py', import.meta.url));

interface CrashConfig {
  page_size: number;
  journal_mode: 'DELETE' | 'TRUNCATE' | 'PERSIST';
  synchronous: 'OFF' | 'NORMAL' | 'FULL';
  cache_pages: number;
  rows: number;
  row_bytes: number;
  updates: number;
  deletes?: number;
  inserts?: number;
  committed_updates?: number;
  seed?: number;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * Runs the Python writer until it is inside its transaction, then SIGKILLs it
 * (by PID) so the database and journal are left exactly as at a crash.
 */
async function crash(cfg: CrashConfig): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'litefs-journal-'));
  dirs.push(dir);
  const child = spawn('python3', [script, JSON.stringify({ ...cfg, dir })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer not ready after 60 s: ${stderr}`)), 60_000);
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`writer exited with ${code} before READY: ${stderr}`));
      });
    });
  } finally {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  }
  return dir;
}

async function inspect(journal: string): Promise<{ header: JournalHeader | null; stats: JournalStats; hot: boolean }> {
  const fh = await open(journal, 'r');
  try {
    const reader = await JournalReader.open(fileHandleSource(fh));
    for await (const _ of reader.records()) {
      // counting only
    }
    return { header: reader.header, stats: { ...reader.stats }, hot: reader.hot };
  } finally {
    await fh.close();
  }
}

function integrity(path: string): string {
  const db = new Database(path, { fileMustExist: true });
  try {
    return String(db.pragma('integrity_check', { simple: true }));
  } finally {
    db.close();
  }
}

/**
 * Rolls back with our code and, on a copy, with SQLite's own hot-journal
 * recovery (triggered by the first read); both must restore the
 * pre-transaction bytes exactly.
 */
async function rollBackAndCompare(dir: string): Promise<Awaited<ReturnType<typeof rollbackJournalFile>>> {
  const db = join(dir, 'db');
  const journal = join(dir, 'db-journal');
  const copyDir = join(dir, 'sqlite');
  await mkdir(copyDir);
  await copyFile(db, join(copyDir, 'db'));
  await copyFile(journal, join(copyDir, 'db-journal'));

  const res = await rollbackJournalFile(realFS, db, journal);
  const ours = await readFile(db);
  const before = await readFile(join(dir, 'before.db'));
  expect(ours.length).toBe(before.length);
  expect(ours.equals(before)).toBe(true);
  expect(integrity(db)).toBe('ok');

  expect(integrity(join(copyDir, 'db'))).toBe('ok');
  expect((await readFile(join(copyDir, 'db'))).equals(ours)).toBe(true);
  return res;
}

describe('rollback of journals left by a killed SQLite writer', () => {
  it('DELETE mode, synchronous=FULL, small cache: several synced segments', async () => {
    const dir = await crash({
      page_size: 4096,
      journal_mode: 'DELETE',
      synchronous: 'FULL',
      cache_pages: 10,
      rows: 600,
      row_bytes: 300,
      updates: 250,
      seed: 1,
    });
    const j = await inspect(join(dir, 'db-journal'));
    expect(j.hot).toBe(true);
    expect(j.header?.nRec).not.toBe(0xffffffff);
    expect(j.stats.segments).toBeGreaterThan(1);
    // The segment being filled when the writer died was never synced.
    expect(j.stats.endReason).toBe('no-segment-magic');
    expect((await readFile(join(dir, 'db'))).equals(await readFile(join(dir, 'before.db')))).toBe(false);
    const res = await rollBackAndCompare(dir);
    expect(res.hot).toBe(true);
    expect(res.pagesRestored).toBe(j.stats.records);
    await expect(stat(join(dir, 'db-journal'))).rejects.toThrow(/ENOENT/);
  });

  it('synchronous=OFF: magic at once, nRec = 0xFFFFFFFF, file grown by inserts is truncated', async () => {
    const dir = await crash({
      page_size: 2048,
      journal_mode: 'DELETE',
      synchronous: 'OFF',
      cache_pages: 10,
      rows: 300,
      row_bytes: 200,
      updates: 80,
      inserts: 400,
      seed: 2,
    });
    const j = await inspect(join(dir, 'db-journal'));
    expect(j.header?.nRec).toBe(0xffffffff);
    expect(j.stats.segments).toBe(1);
    const sizeBefore = (await stat(join(dir, 'before.db'))).size;
    expect((await stat(join(dir, 'db'))).size).toBeGreaterThan(sizeBefore);
    const res = await rollBackAndCompare(dir);
    expect(res.originalPageCount).toBe(sizeBefore / 2048);
  });

  it('TRUNCATE mode with 512-byte pages', async () => {
    const dir = await crash({
      page_size: 512,
      journal_mode: 'TRUNCATE',
      synchronous: 'FULL',
      cache_pages: 12,
      rows: 400,
      row_bytes: 100,
      updates: 150,
      deletes: 40,
      seed: 3,
    });
    expect((await inspect(join(dir, 'db-journal'))).hot).toBe(true);
    await rollBackAndCompare(dir);
  });

  it('65536-byte pages (page larger than the journal sector)', async () => {
    const dir = await crash({
      page_size: 65536,
      journal_mode: 'DELETE',
      synchronous: 'NORMAL',
      cache_pages: 3,
      rows: 120,
      row_bytes: 3000,
      updates: 60,
      inserts: 20,
      seed: 4,
    });
    const j = await inspect(join(dir, 'db-journal'));
    expect(j.header?.pageSize).toBe(65536);
    expect(j.header?.sectorSize).toBeLessThan(65536);
    await rollBackAndCompare(dir);
  });

  it('PERSIST + synchronous=OFF: stale records of an older transaction end playback by checksum', async () => {
    const dir = await crash({
      page_size: 1024,
      journal_mode: 'PERSIST',
      synchronous: 'OFF',
      cache_pages: 10,
      rows: 400,
      row_bytes: 150,
      committed_updates: 1,
      updates: 40,
      seed: 5,
    });
    const journal = join(dir, 'db-journal');
    const j = await inspect(journal);
    expect(j.header?.nRec).toBe(0xffffffff);
    expect(j.stats.endReason).toBe('bad-checksum');

    // Without the checksum rule the stale records would be restored too and
    // the result would not be the pre-transaction database: the test has teeth.
    const naive = Buffer.from(await readFile(join(dir, 'db')));
    const jbuf = await readFile(journal);
    const { pageSize, sectorSize, dbSizePages } = j.header ?? { pageSize: 0, sectorSize: 0, dbSizePages: 0 };
    const seen = new Set<number>();
    let stale = 0;
    for (let o = sectorSize; o + pageSize + 8 <= jbuf.length; o += pageSize + 8) {
      const pgno = jbuf.readUInt32BE(o);
      if (pgno === 0 || pgno > dbSizePages || seen.has(pgno)) continue;
      seen.add(pgno);
      const page = jbuf.subarray(o + 4, o + 4 + pageSize);
      if (journalRecordChecksum(j.header?.nonce ?? 0, page) !== jbuf.readUInt32BE(o + 4 + pageSize)) stale++;
      page.copy(naive, (pgno - 1) * pageSize);
    }
    expect(stale).toBeGreaterThan(0);
    expect(naive.subarray(0, dbSizePages * pageSize).equals(await readFile(join(dir, 'before.db')))).toBe(false);

    await rollBackAndCompare(dir);
  });

  it('PERSIST + synchronous=FULL after committed transactions', async () => {
    const dir = await crash({
      page_size: 4096,
      journal_mode: 'PERSIST',
      synchronous: 'FULL',
      cache_pages: 10,
      rows: 500,
      row_bytes: 250,
      committed_updates: 2,
      updates: 120,
      seed: 6,
    });
    expect((await inspect(join(dir, 'db-journal'))).hot).toBe(true);
    await rollBackAndCompare(dir);
  });

  it('synchronous=FULL without a spill: the journal has no magic and is deleted unplayed', async () => {
    const dir = await crash({
      page_size: 4096,
      journal_mode: 'DELETE',
      synchronous: 'FULL',
      cache_pages: 100_000,
      rows: 200,
      row_bytes: 200,
      updates: 100,
      seed: 7,
    });
    const journal = join(dir, 'db-journal');
    expect((await stat(journal)).size).toBeGreaterThan(0);
    expect(await isHotJournalFile(journal)).toBe(false);
    const res = await rollbackJournalFile(realFS, join(dir, 'db'), journal);
    expect(res).toMatchObject({ hot: false, removed: true, pagesRestored: 0, originalPageCount: null });
    await expect(stat(journal)).rejects.toThrow(/ENOENT/);
    expect((await readFile(join(dir, 'db'))).equals(await readFile(join(dir, 'before.db')))).toBe(true);
    expect(integrity(join(dir, 'db'))).toBe('ok');
  });

  it('a committed PERSIST journal (zeroed header) is not hot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'litefs-journal-'));
    dirs.push(dir);
    const path = join(dir, 'db');
    const db = new Database(path);
    db.pragma('journal_mode = PERSIST');
    db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(5000));');
    db.exec('UPDATE t SET x = randomblob(5000)');
    db.close();
    const journal = join(dir, 'db-journal');
    const head = await readFile(journal);
    expect(head.length).toBeGreaterThan(28);
    expect(head.subarray(0, 28).equals(Buffer.alloc(28))).toBe(true);
    expect(await isHotJournalFile(journal)).toBe(false);
    const before = await readFile(path);
    expect(await rollbackJournalFile(realFS, path, journal)).toMatchObject({ hot: false, removed: true, pagesRestored: 0 });
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('reports no journal as not hot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'litefs-journal-'));
    dirs.push(dir);
    expect(await isHotJournalFile(join(dir, 'nope-journal'))).toBe(false);
    expect(await rollbackJournalFile(realFS, join(dir, 'nope'), join(dir, 'nope-journal'))).toMatchObject({ hot: false, removed: false });
  });

  it('matches SQLite across random workloads', async () => {
    const modes = ['DELETE', 'TRUNCATE', 'PERSIST'] as const;
    const syncs = ['OFF', 'NORMAL', 'FULL'] as const;
    const sizes = [512, 1024, 4096, 8192];
    const reasons: string[] = [];
    for (let seed = 100; seed < 106; seed++) {
      const cfg: CrashConfig = {
        page_size: sizes[seed % sizes.length] ?? 4096,
        journal_mode: modes[seed % 3] ?? 'DELETE',
        synchronous: syncs[Math.floor(seed / 3) % 3] ?? 'FULL',
        cache_pages: 8 + (seed % 5),
        rows: 200 + ((seed * 37) % 300),
        row_bytes: 50 + ((seed * 91) % 400),
        updates: 30 + ((seed * 13) % 120),
        deletes: seed % 2 === 0 ? 20 : 0,
        inserts: (seed * 7) % 150,
        committed_updates: seed % 3 === 2 ? 1 : 0,
        seed,
      };
      const dir = await crash(cfg);
      if (!(await isHotJournalFile(join(dir, 'db-journal')))) {
        expect((await readFile(join(dir, 'db'))).equals(await readFile(join(dir, 'before.db'))), JSON.stringify(cfg)).toBe(true);
        reasons.push('not-hot');
        continue;
      }
      reasons.push(String((await rollBackAndCompare(dir)).endReason));
    }
    // Small caches spill, so most runs must leave a hot journal to exercise.
    expect(reasons.filter((r) => r !== 'not-hot').length).toBeGreaterThanOrEqual(4);
  });
});
