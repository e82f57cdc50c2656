import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  CHECKSUM_FLAG,
  DatabaseChecksum,
  checksumDatabaseFile,
  checksumPage,
  computePageChecksums,
  databaseChecksumFromPages,
  lockPgno,
  parseDatabaseHeader,
  readDatabaseGeometry,
} from '../../src/ltx/checksum.js';
import { LtxError } from '../../src/ltx/errors.js';
import { GO_DB, randomBytes, referenceCrc64, rng, withTmpDir } from './helpers.js';

function refPageChecksum(pgno: number, data: Uint8Array): bigint {
  const b = new Uint8Array(4 + data.length);
  new DataView(b.buffer).setUint32(0, pgno);
  b.set(data, 4);
  return CHECKSUM_FLAG | referenceCrc64(b);
}

describe('page and database checksums', () => {
  it('reproduces the golden vectors', () => {
    expect(checksumPage(1, new Uint8Array(4096))).toBe(0xd9328f592d9e733dn);
    expect(checksumPage(1, new Uint8Array(512))).toBe(0xefb1f44fecd99000n);
    // ltx TestChecksumReader: three 512-byte pages of 0x01, 0x02, 0x03.
    const db = new DatabaseChecksum(512);
    for (let pgno = 1; pgno <= 3; pgno++) db.addPage(pgno, new Uint8Array(512).fill(pgno));
    expect(db.value).toBe(0xefffffffecd99000n);
  });

  it('matches the reference for random pages, including large page numbers', () => {
    const rand = rng(11);
    for (const ps of [512, 1024, 4096, 65536]) {
      for (const pgno of [1, 2, 255, 256, 65537, 0x01020304, 0xfffffffe]) {
        const data = randomBytes(rand, ps);
        expect(checksumPage(pgno, data)).toBe(refPageChecksum(pgno, data));
      }
    }
  });

  it('computes the lock page number for every page size', () => {
    expect(lockPgno(512)).toBe(2097153);
    expect(lockPgno(1024)).toBe(1048577);
    expect(lockPgno(4096)).toBe(262145);
    expect(lockPgno(65536)).toBe(16385);
  });

  it('gives FLAG for an empty database and ignores the lock page', () => {
    expect(new DatabaseChecksum(4096).value).toBe(CHECKSUM_FLAG);
    const d = new DatabaseChecksum(65536);
    d.addPage(lockPgno(65536), new Uint8Array(65536).fill(9));
    expect(d.value).toBe(CHECKSUM_FLAG);
    expect(databaseChecksumFromPages(new BigUint64Array(0), 0)).toBe(CHECKSUM_FLAG);
  });

  it('is order-free and matches XOR over per-page checksums', () => {
    const rand = rng(5);
    const pages = Array.from({ length: 20 }, () => randomBytes(rand, 1024));
    const a = new DatabaseChecksum(1024);
    const b = new DatabaseChecksum(1024);
    const sums = new BigUint64Array(20);
    pages.forEach((p, i) => {
      a.addPage(i + 1, p);
      sums[i] = checksumPage(i + 1, p);
    });
    for (let i = 19; i >= 0; i--) b.addChecksum(checksumPage(i + 1, pages[i]!));
    let x = 0n;
    for (const s of sums) x ^= s;
    expect(a.value).toBe(b.value);
    expect(a.value).toBe(CHECKSUM_FLAG | x);
    expect(databaseChecksumFromPages(sums, 20)).toBe(a.value);
    expect(() => databaseChecksumFromPages(sums, 21)).toThrow(RangeError);
  });
});

describe('database files', () => {
  it('checksums the Go fixture database to its LTX post-apply checksum', async () => {
    expect(await checksumDatabaseFile(GO_DB)).toBe(0xfe3831a381c602b9n);
    expect(await readDatabaseGeometry(GO_DB)).toEqual({ pageSize: 4096, pageCount: 10, fileSize: 40960 });
  });

  it('computePageChecksums matches checksumPage for path, fd and FileHandle inputs', async () => {
    const raw = await readFile(GO_DB);
    const want = Array.from({ length: 10 }, (_, i) => checksumPage(i + 1, raw.subarray(i * 4096, (i + 1) * 4096)));
    expect(Array.from(await computePageChecksums(GO_DB, 4096, 10))).toEqual(want);
    const fh = await open(GO_DB, 'r');
    try {
      expect(Array.from(await computePageChecksums(fh, 4096, 10))).toEqual(want);
      expect(Array.from(await computePageChecksums(fh.fd, 4096, 10))).toEqual(want);
    } finally {
      await fh.close();
    }
  });

  it('leaves 0 for pages at or past EOF and for a partial last page', async () => {
    await withTmpDir(async (dir) => {
      const p = join(dir, 'short.db');
      const rand = rng(8);
      const data = randomBytes(rand, 3 * 512 + 100);
      await writeFile(p, data);
      const sums = await computePageChecksums(p, 512, 6);
      expect(sums[0]).toBe(checksumPage(1, data.subarray(0, 512)));
      expect(sums[2]).toBe(checksumPage(3, data.subarray(1024, 1536)));
      expect(Array.from(sums.subarray(3))).toEqual([0n, 0n, 0n]);
      expect((await computePageChecksums(p, 512, 0)).length).toBe(0);
    });
  });

  it('spans several read chunks and leaves the lock page at 0 (sparse 1 GiB file)', async () => {
    await withTmpDir(async (dir) => {
      const p = join(dir, 'big.db');
      const ps = 65536;
      const lock = lockPgno(ps);
      const n = lock + 2;
      await writeFile(p, new Uint8Array(0));
      await truncate(p, n * ps);
      const fh = await open(p, 'r+');
      const marker = new Uint8Array(ps).fill(0xab);
      try {
        await fh.write(marker, 0, ps, (lock - 1) * ps); // content in the lock page must not count
        await fh.write(marker, 0, ps, (n - 1) * ps);
      } finally {
        await fh.close();
      }
      const sums = await computePageChecksums(p, ps, n);
      const zero = new Uint8Array(ps);
      expect(sums[lock - 1]).toBe(0n);
      expect(sums[lock - 2]).toBe(checksumPage(lock - 1, zero));
      expect(sums[n - 1]).toBe(checksumPage(n, marker));
      expect(sums[100]).toBe(checksumPage(101, zero));
    });
  }, 60_000);

  it('agrees with a database SQLite wrote, page by page', async () => {
    await withTmpDir(async (dir) => {
      const p = join(dir, 'real.db');
      const db = new Database(p);
      db.pragma('page_size = 1024');
      db.pragma('journal_mode = DELETE');
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
      const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
      const rand = rng(21);
      for (let i = 0; i < 200; i++) ins.run(Buffer.from(randomBytes(rand, 300)));
      db.close();
      const raw = await readFile(p);
      const n = raw.length / 1024;
      let x = 0n;
      for (let i = 0; i < n; i++) x ^= refPageChecksum(i + 1, raw.subarray(i * 1024, (i + 1) * 1024));
      expect(await checksumDatabaseFile(p)).toBe(CHECKSUM_FLAG | x);
    });
  });

  it('handles empty and invalid database files', async () => {
    await withTmpDir(async (dir) => {
      const empty = join(dir, 'empty.db');
      await writeFile(empty, new Uint8Array(0));
      expect(await checksumDatabaseFile(empty)).toBe(CHECKSUM_FLAG);
      const junk = join(dir, 'junk.db');
      await writeFile(junk, new Uint8Array(200).fill(7));
      await expect(checksumDatabaseFile(junk)).rejects.toMatchObject({ code: 'ERR_LTX_DB_INVALID' });
      const tiny = join(dir, 'tiny.db');
      await writeFile(tiny, new Uint8Array(10));
      await expect(checksumDatabaseFile(tiny)).rejects.toBeInstanceOf(LtxError);
    });
  });

  it('reads the SQLite header like SQLite: 1 means 65536, stale counts fall back to the file size', async () => {
    const raw = new Uint8Array(await readFile(GO_DB));
    const h = raw.slice(0, 100);
    expect(parseDatabaseHeader(h, 40960)).toEqual({ pageSize: 4096, pageCount: 10, fileSize: 40960 });
    const stale = h.slice();
    stale[95]! ^= 1; // version-valid-for no longer equals the change counter
    expect(parseDatabaseHeader(stale, 8192).pageCount).toBe(2);
    const big = h.slice();
    big[16] = 0;
    big[17] = 1;
    new DataView(big.buffer).setUint32(28, 1);
    expect(parseDatabaseHeader(big, 65536)).toEqual({ pageSize: 65536, pageCount: 1, fileSize: 65536 });
    const badSize = h.slice();
    badSize[16] = 0x03;
    expect(() => parseDatabaseHeader(badSize, 40960)).toThrow(/invalid page size/);
    // Header claims more pages than the file holds.
    expect(() => parseDatabaseHeader(h, 4096 * 5)).toThrow(/only 5/);
  });

  it('rejects invalid page sizes and counts', async () => {
    await expect(computePageChecksums(GO_DB, 1000, 1)).rejects.toMatchObject({ code: 'ERR_LTX_PAGE_INVALID' });
    await expect(computePageChecksums(GO_DB, 4096, -1)).rejects.toMatchObject({ code: 'ERR_LTX_PAGE_INVALID' });
  });
});
