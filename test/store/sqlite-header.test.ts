import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SQLiteHeaderError,
  decodePageSize,
  hasDatabaseMagic,
  isValidPageSize,
  lockPageNumber,
  parseDatabaseHeader,
} from '../../src/store/sqlite-header.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'litefs-hdr-'));
  dirs.push(d);
  return d;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof SQLiteHeaderError ? err.code : `other: ${String(err)}`;
  }
  return 'ok';
}

describe('parseDatabaseHeader', () => {
  it('reads the fields of a real rollback-mode database', async () => {
    const path = join(await tempDir(), 'a.db');
    const db = new Database(path);
    db.pragma('page_size = 8192');
    db.pragma('journal_mode = DELETE');
    db.pragma('user_version = 77');
    db.pragma('application_id = -5');
    db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1); CREATE TABLE u(y);');
    const pages = (db.pragma('page_count', { simple: true }) as number) ?? 0;
    const cookie = db.pragma('schema_version', { simple: true }) as number;
    db.close();

    const h = parseDatabaseHeader(await readFile(path));
    expect(h.pageSize).toBe(8192);
    expect(h.wal).toBe(false);
    expect([h.writeVersion, h.readVersion]).toEqual([1, 1]);
    expect(h.pageCount).toBe(pages);
    expect(h.pageCountValid).toBe(true);
    expect(h.schemaCookie).toBe(cookie);
    expect(h.userVersion).toBe(77);
    expect(h.applicationId).toBe(-5);
    expect(h.textEncoding).toBe('utf-8');
    expect(h.fileChangeCounter).toBeGreaterThan(0);
    expect(h.versionValidFor).toBe(h.fileChangeCounter);
    expect(h.sqliteVersion).toBeGreaterThan(3_000_000);
  });

  it('detects WAL mode and the 65536 page size encoding', async () => {
    const path = join(await tempDir(), 'w.db');
    const db = new Database(path);
    db.pragma('page_size = 65536');
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(x)');
    db.close();
    const buf = await readFile(path);
    expect(buf.readUInt16BE(16)).toBe(1);
    const h = parseDatabaseHeader(buf);
    expect(h.pageSize).toBe(65536);
    expect(h.wal).toBe(true);
  });

  it('throws typed errors for short, foreign and corrupt headers', () => {
    const good = Buffer.alloc(100);
    good.write('SQLite format 3\0', 0, 'latin1');
    good.writeUInt16BE(4096, 16);
    expect(code(() => parseDatabaseHeader(good))).toBe('ok');
    expect(code(() => parseDatabaseHeader(good.subarray(0, 99)))).toBe('ERR_SQLITE_HEADER_SHORT');
    expect(code(() => parseDatabaseHeader(Buffer.alloc(0)))).toBe('ERR_SQLITE_HEADER_SHORT');
    const foreign = Buffer.from(good);
    foreign.write('SQLite format 2', 0, 'latin1');
    expect(code(() => parseDatabaseHeader(foreign))).toBe('ERR_SQLITE_HEADER_MAGIC');
    for (const raw of [0, 2, 256, 511, 513, 3000, 32769]) {
      const bad = Buffer.from(good);
      bad.writeUInt16BE(raw, 16);
      expect(
        code(() => parseDatabaseHeader(bad)),
        `page size ${raw}`,
      ).toBe('ERR_SQLITE_HEADER_PAGE_SIZE');
    }
  });

  it('flags an in-header page count that SQLite would not trust', () => {
    const b = Buffer.alloc(100);
    b.write('SQLite format 3\0', 0, 'latin1');
    b.writeUInt16BE(1024, 16);
    b.writeUInt32BE(5, 24); // change counter
    b.writeUInt32BE(9, 28); // page count
    b.writeUInt32BE(4, 92); // version-valid-for lags the counter: legacy writer
    expect(parseDatabaseHeader(b).pageCountValid).toBe(false);
    b.writeUInt32BE(5, 92);
    expect(parseDatabaseHeader(b).pageCountValid).toBe(true);
  });
});

describe('page size helpers', () => {
  it('validates and decodes page sizes', () => {
    for (const n of [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]) expect(isValidPageSize(n)).toBe(true);
    for (const n of [0, 1, 256, 1000, 131072, 4096.5]) expect(isValidPageSize(n)).toBe(false);
    expect(decodePageSize(1)).toBe(65536);
    expect(decodePageSize(512)).toBe(512);
    expect(() => decodePageSize(100)).toThrow(SQLiteHeaderError);
  });

  it('locates the lock page like the reference table', () => {
    expect(lockPageNumber(512)).toBe(2097153);
    expect(lockPageNumber(1024)).toBe(1048577);
    expect(lockPageNumber(4096)).toBe(262145);
    expect(lockPageNumber(65536)).toBe(16385);
  });

  it('recognises the magic', () => {
    expect(hasDatabaseMagic(Buffer.from('SQLite format 3\0xyz', 'latin1'))).toBe(true);
    expect(hasDatabaseMagic(Buffer.from('SQLite format 3', 'latin1'))).toBe(false);
  });
});
