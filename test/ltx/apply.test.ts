import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { applyLtxFiles } from '../../src/ltx/apply.js';
import { CHECKSUM_FLAG, checksumDatabaseFile } from '../../src/ltx/checksum.js';
import { compactLtxFiles } from '../../src/ltx/compactor.js';
import { encodeLtxToBuffer } from '../../src/ltx/encoder.js';
import { LtxError } from '../../src/ltx/errors.js';
import { newHeader } from '../../src/ltx/types.js';
import { DbModel, bytesEqual, craftLtx, mixedPage, rng, sqlitePage1, withTmpDir } from './helpers.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    return (err as LtxError).code;
  }
  return 'resolved';
}

/** A chain of transactions on a database whose page 1 is a valid SQLite header. */
function makeChain(seed: number, pageSize = 1024) {
  const rand = rng(seed);
  const db = new DbModel(pageSize);
  let counter = 0;
  const pg = () => mixedPage(rand, pageSize);
  const tx = (pgnos: number[], commit: number) => {
    counter++;
    const changes = new Map<number, Uint8Array>([[1, sqlitePage1(pageSize, commit, counter, counter)]]);
    for (const p of pgnos) changes.set(p, pg());
    return db.tx(changes, commit);
  };
  return { db, tx };
}

async function writeAll(dir: string, files: Uint8Array[]): Promise<string[]> {
  const paths = files.map((_, i) => join(dir, `tx${i + 1}.ltx`));
  await Promise.all(files.map((f, i) => writeFile(paths[i]!, f)));
  return paths;
}

describe('applyLtxFiles', () => {
  it('builds a database from a snapshot and incrementals, growing and shrinking', async () => {
    await withTmpDir(async (dir) => {
      const { db, tx } = makeChain(1);
      const files = [tx([2, 3, 4], 4), tx([5, 6, 7, 8], 8), tx([3], 8), tx([2], 3)];
      const paths = await writeAll(dir, files);
      const dbPath = join(dir, 'db');
      const r = await applyLtxFiles(dbPath, paths);
      expect(r).toEqual({
        pos: { txid: 4n, postApplyChecksum: db.checksum() },
        pageSize: 1024,
        commit: 3,
        files: 4,
        pagesWritten: 4 + 5 + 2 + 2,
      });
      expect(bytesEqual(new Uint8Array(await readFile(dbPath)), db.file())).toBe('equal');
      expect(await checksumDatabaseFile(dbPath)).toBe(db.checksum());
    });
  });

  it('continues an existing database when the first PreApply matches its checksum', async () => {
    await withTmpDir(async (dir) => {
      const { db, tx } = makeChain(2);
      tx([2, 3], 3);
      const dbPath = join(dir, 'db');
      await writeFile(dbPath, db.file());
      const next = [tx([3, 4], 4), tx([2], 4)];
      const r = await applyLtxFiles(dbPath, await writeAll(dir, next));
      expect(r.pos.txid).toBe(3n);
      expect(bytesEqual(new Uint8Array(await readFile(dbPath)), db.file())).toBe('equal');
    });
  });

  it('refuses a TXID gap, a checksum mismatch or a bad file without touching the database', async () => {
    await withTmpDir(async (dir) => {
      const { db, tx } = makeChain(3);
      const files = [tx([2, 3], 3), tx([2], 3), tx([3], 3), tx([2, 4], 4)];
      const paths = await writeAll(dir, files);
      const dbPath = join(dir, 'db');
      // The database is at TXID 2.
      await applyLtxFiles(dbPath, paths.slice(0, 2));
      const before = await readFile(dbPath);
      const mtime = (await stat(dbPath)).mtimeMs;
      const untouched = async () => {
        expect(bytesEqual(await readFile(dbPath), before)).toBe('equal');
        expect((await stat(dbPath)).mtimeMs).toBe(mtime);
      };

      // Skipping TXID 3: file 4's PreApply cannot match the database at TXID 2.
      expect(await code(applyLtxFiles(dbPath, [paths[3]!]))).toBe('ERR_LTX_DB_CHECKSUM_MISMATCH');
      await untouched();
      // TXID 3 twice: the second is not contiguous with the first.
      expect(await code(applyLtxFiles(dbPath, [paths[2]!, paths[2]!]))).toBe('ERR_LTX_NOT_CONTIGUOUS');
      await untouched();
      // Wrong order.
      expect(await code(applyLtxFiles(dbPath, [paths[3]!, paths[2]!]))).toBe('ERR_LTX_DB_CHECKSUM_MISMATCH');
      await untouched();
      // A later file is corrupt: nothing is written even though the first one is fine.
      const corrupt = join(dir, 'corrupt.ltx');
      const bad = files[3]!.slice();
      bad[bad.length - 30]! ^= 0x40;
      await writeFile(corrupt, bad);
      expect(await code(applyLtxFiles(dbPath, [paths[2]!, corrupt]))).toBe('ERR_LTX_CHECKSUM_MISMATCH');
      await untouched();
      // A well-formed file whose PostApply does not match what its pages produce.
      const h = newHeader({ pageSize: 1024, commit: 3, minTXID: 3n, maxTXID: 3n, preApplyChecksum: await checksumDatabaseFile(dbPath) });
      const lying = join(dir, 'lying.ltx');
      await writeFile(lying, encodeLtxToBuffer(h, [{ pgno: 2, data: new Uint8Array(1024) }], CHECKSUM_FLAG | 5n));
      expect(await code(applyLtxFiles(dbPath, [lying]))).toBe('ERR_LTX_DB_CHECKSUM_MISMATCH');
      await untouched();
      // A file that grows the database without carrying the new pages.
      const sneaky = join(dir, 'sneaky.ltx');
      await writeFile(sneaky, craftLtx({ ...h, commit: 5 }, [{ pgno: 2, data: new Uint8Array(1024) }], CHECKSUM_FLAG | 5n));
      expect(await code(applyLtxFiles(dbPath, [sneaky]))).toBe('ERR_LTX_PAGE_INVALID');
      await untouched();
      // Page size differs from the database's.
      const other = join(dir, 'other.ltx');
      await writeFile(other, encodeLtxToBuffer({ ...h, pageSize: 2048 }, [], CHECKSUM_FLAG | 5n));
      expect(await code(applyLtxFiles(dbPath, [other]))).toBe('ERR_LTX_PAGE_SIZE_MISMATCH');
      await untouched();
      expect(await code(applyLtxFiles(dbPath, []))).toBe('ERR_LTX_STATE');

      // And the right continuation applies.
      await applyLtxFiles(dbPath, paths.slice(2));
      expect(bytesEqual(new Uint8Array(await readFile(dbPath)), db.file())).toBe('equal');
    });
  });

  it('turns a deletion (commit 0) into an empty file, and accepts PreApply FLAG on an empty database', async () => {
    await withTmpDir(async (dir) => {
      const { db, tx } = makeChain(4);
      const files = [tx([2], 2), db.tx(new Map(), 0)];
      const dbPath = join(dir, 'db');
      const r = await applyLtxFiles(dbPath, await writeAll(dir, files));
      expect(r.commit).toBe(0);
      expect(r.pos.postApplyChecksum).toBe(CHECKSUM_FLAG);
      expect((await stat(dbPath)).size).toBe(0);
      // The next transaction after a deletion starts from the empty checksum.
      const after = db.tx(new Map([[1, sqlitePage1(1024, 1, 9)]]), 1);
      const p = join(dir, 'after.ltx');
      await writeFile(p, after);
      await applyLtxFiles(dbPath, [p]);
      expect(await checksumDatabaseFile(dbPath)).toBe(db.checksum());
    });
  });

  it('gives the same database as applying the compacted chain', async () => {
    await withTmpDir(async (dir) => {
      const { tx } = makeChain(5, 4096);
      const files = [tx([2, 3, 4, 5], 5), tx([6], 6), tx([2, 6], 6), tx([], 4), tx([5, 6, 7], 7)];
      const paths = await writeAll(dir, files);
      const compacted = join(dir, 'all.ltx');
      await compactLtxFiles(paths, compacted, { flags: 1 });
      await applyLtxFiles(join(dir, 'a'), paths);
      await applyLtxFiles(join(dir, 'b'), [compacted]);
      expect(bytesEqual(await readFile(join(dir, 'a')), await readFile(join(dir, 'b')))).toBe('equal');
    });
  });

  it('reproduces a database SQLite wrote, which SQLite then opens', async () => {
    await withTmpDir(async (dir) => {
      const src = join(dir, 'src.db');
      const db = new Database(src);
      db.pragma('journal_mode = DELETE');
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 300; i++) ins.run(`row ${i} `.repeat(20));
      const v1 = new Uint8Array(await readFile(src));
      db.exec("UPDATE t SET v = 'changed' WHERE id % 7 = 0");
      for (let i = 0; i < 100; i++) ins.run(`more ${i} `.repeat(30));
      db.close();
      const v2 = new Uint8Array(await readFile(src));
      const ps = 4096;
      const pagesOf = (b: Uint8Array) => Array.from({ length: b.length / ps }, (_, i) => b.subarray(i * ps, (i + 1) * ps));
      const p1 = pagesOf(v1);
      const p2 = pagesOf(v2);
      const snapPath = join(dir, 'snap.ltx');
      await writeFile(join(dir, 'v1.db'), v1);
      const c1 = await checksumDatabaseFile(join(dir, 'v1.db'));
      await writeFile(
        snapPath,
        encodeLtxToBuffer(
          newHeader({ pageSize: ps, commit: p1.length, minTXID: 1n, maxTXID: 1n }),
          p1.map((data, i) => ({ pgno: i + 1, data })),
          c1,
        ),
      );
      const changed = p2
        .map((data, i) => ({ pgno: i + 1, data }))
        .filter((p) => p.pgno > p1.length || !Buffer.from(p.data).equals(Buffer.from(p1[p.pgno - 1]!)));
      const incPath = join(dir, 'inc.ltx');
      await writeFile(
        incPath,
        encodeLtxToBuffer(
          newHeader({ flags: 1, pageSize: ps, commit: p2.length, minTXID: 2n, maxTXID: 2n, preApplyChecksum: c1 }),
          changed,
          await checksumDatabaseFile(src),
        ),
      );
      const out = join(dir, 'out.db');
      await applyLtxFiles(out, [snapPath]);
      expect(bytesEqual(new Uint8Array(await readFile(out)), v1)).toBe('equal');
      await applyLtxFiles(out, [incPath]);
      expect(bytesEqual(new Uint8Array(await readFile(out)), v2)).toBe('equal');
      const check = new Database(out, { readonly: true });
      try {
        expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 400 });
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        check.close();
      }
    });
  });
});
