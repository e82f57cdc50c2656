import { readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyLtxFiles, checksumDatabaseFile, checksumPage, formatPos, hex64, parsePos, verifyLtxFile } from '../../src/ltx/index.js';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { checksumOf, expectedImage, litefs, makeDatabase, querySqlite, tempDir } from './helpers.js';

/*
 * A 100 MB database through a real daemon: `litefs import` into a database
 * that already has history, `litefs export` back out, and everything
 * compared: checksums, content, integrity, and the LTX chain on disk.
 */

let work: string;
let node: LiteFSNode;
let url: string;

beforeAll(async () => {
  work = await tempDir('litefs-roundtrip-');
  node = await startNode();
  const line = node.logLines().find((l) => l['msg'] === 'http: listening');
  url = `http://127.0.0.1:${String(line?.['port'])}`;
});

afterAll(async () => {
  await destroyAllNodes();
  await rm(work, { recursive: true, force: true });
});

it('round-trips a 100 MB database: one LTX file, equal checksums, intact content', async () => {
  const src = path.join(work, 'big.db');
  await makeDatabase(src, { rows: 103_000, blob: 1000 });
  const size = (await stat(src)).size;
  expect(size).toBeGreaterThan(100 << 20);
  const srcRows = await querySqlite(src, 'SELECT count(*), sum(length(v)) FROM t');

  // Some history first, so the import continues an existing chain.
  const setup = await runSqlite3(
    node.path('app.db'),
    'PRAGMA journal_mode=DELETE; CREATE TABLE old(x); INSERT INTO old VALUES (1); INSERT INTO old VALUES (2);',
    {
      busyTimeoutMs: 5000,
    },
  );
  expect(setup.code, setup.stderr).toBe(0);
  const ltxDir = node.ltxDir('app.db');
  const history = (await readdir(ltxDir)).sort();
  expect(history.length).toBe(3);
  const oldPage1 = (await readFile(node.databaseFile('app.db'))).subarray(0, 100);

  const imp = await litefs(['import', '-name', 'app.db', '-url', url, src]);
  expect(imp.stderr).toBe('');
  expect(imp.code).toBe(0);
  const m = /^app\.db: imported (.+) \((\d+) bytes\); position ([0-9a-f]{16}\/[0-9a-f]{16})\n$/.exec(imp.stdout);
  expect(m, imp.stdout).not.toBeNull();
  expect(m![1]).toBe(src);
  expect(Number(m![2])).toBe(size);
  const pos = parsePos(m![3]!);
  expect(pos.txid).toBe(4n);

  // Exactly one LTX file for the import, and the whole chain verifies and replays.
  const after = (await readdir(ltxDir)).sort();
  expect(after).toEqual([...history, '0000000000000004-0000000000000004.ltx']);
  for (const f of after) await verifyLtxFile(path.join(ltxDir, f), { strict: true });
  const importLtx = await verifyLtxFile(path.join(ltxDir, after[3]!), { strict: true });
  expect(importLtx.header.commit).toBe(size / 4096);
  expect(importLtx.pageCount).toBe(size / 4096);
  const replay = path.join(work, 'replay.db');
  const replayed = await applyLtxFiles(
    replay,
    after.map((f) => path.join(ltxDir, f)),
  );
  expect(replayed.pos).toEqual(pos);

  // The position is the upload with page 1 patched (counters bumped past the old database's).
  const want = await expectedImage(src, { counter: oldPage1.readUInt32BE(24), cookie: oldPage1.readUInt32BE(40) });
  expect(checksumOf(want, 4096)).toBe(pos.postApplyChecksum);
  const original = await readFile(src);
  const originalSum = await checksumDatabaseFile(src);
  // The original's checksum differs from the position by page 1's change only.
  expect((originalSum ^ checksumPage(1, original.subarray(0, 4096)) ^ checksumPage(1, want.subarray(0, 4096))) | (1n << 63n)).toBe(
    pos.postApplyChecksum,
  );
  expect((await readFile(node.path('app.db-pos'), 'utf8')).trim()).toBe(formatPos(pos));

  const out = path.join(work, 'export.db');
  const exp = await litefs(['export', '-name', 'app.db', '-url', url, out]);
  expect(exp.stderr).toBe('');
  expect(exp.code).toBe(0);
  expect(exp.stdout).toBe(`app.db: exported to ${out} (${size} bytes); position ${formatPos(pos)}\n`);
  const exported = await readFile(out);
  expect(exported.equals(want)).toBe(true);
  expect(exported.subarray(4096).equals(original.subarray(4096))).toBe(true);
  const cli = await litefs(['ltx', 'checksum', out]);
  expect(cli.stdout).toBe(`${hex64(pos.postApplyChecksum)}\n`);
  expect(await querySqlite(out, 'PRAGMA integrity_check')).toEqual(['ok']);
  expect(await querySqlite(out, 'SELECT count(*), sum(length(v)) FROM t')).toEqual(srcRows);
  expect(await querySqlite(out, "SELECT count(*) FROM sqlite_master WHERE name = 'old'")).toEqual(['0']);
  await expect(stat(`${out}.tmp`)).rejects.toThrow(/ENOENT/);

  // Through the mount too.
  const viaMount = await runSqlite3(node.path('app.db'), 'SELECT count(*), sum(length(v)) FROM t;', { busyTimeoutMs: 5000 });
  expect(viaMount.stdout.trim()).toBe(srcRows[0]);
});
