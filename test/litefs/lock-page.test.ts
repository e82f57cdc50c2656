import { open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { destroyAllNodes, startNode } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { checkConsistency, runCli } from './chain.js';

afterEach(destroyAllNodes);

const PAGE = 65536;
/** floor(0x40000000 / 65536) + 1: the page holding SQLite's PENDING byte. */
const LOCK_PAGE = 16385;

describe('the lock page (databases over 1 GiB)', () => {
  it('a 1.1 GiB database: the lock page is never in an LTX file nor in any checksum, replay and restart agree byte for byte', async () => {
    const node = await startNode();
    const db = node.path('big.db');
    // 64 KiB pages and 1 MB zero blobs: ~17k page writes in one transaction,
    // and LZ4 keeps the LTX file small.
    let r = await runSqlite3(
      db,
      'PRAGMA page_size=65536; CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO b(v) SELECT zeroblob(1000000) FROM generate_series(1, 1100);',
      { timeoutMs: 240_000 },
    );
    expect(r.stderr).toBe('');
    let c = await checkConsistency(node, 'big.db');
    expect(c.txid).toBe(2n);
    const bulk = c.chain[1]!;
    expect(bulk.header.pageSize).toBe(PAGE);
    expect(bulk.header.commit).toBeGreaterThan(LOCK_PAGE);
    expect(bulk.pgnos).not.toContain(LOCK_PAGE);
    expect(bulk.pgnos).toContain(LOCK_PAGE + 1);
    expect((await stat(node.databaseFile('big.db'))).size).toBe(bulk.header.commit * PAGE);

    // A transaction touching pages after the lock page.
    r = await runSqlite3(db, 'UPDATE b SET v = randomblob(70000) WHERE id = 1100; UPDATE b SET v = zeroblob(10) WHERE id = 1;', {
      timeoutMs: 120_000,
    });
    expect(r.stderr).toBe('');
    c = await checkConsistency(node, 'big.db');
    expect(c.txid).toBe(4n);
    expect(c.chain[2]!.pgnos.some((p) => p > LOCK_PAGE)).toBe(true);
    for (const e of c.chain) expect(e.pgnos).not.toContain(LOCK_PAGE);

    // The lock page in the file is never written: all zeros.
    const fh = await open(node.databaseFile('big.db'), 'r');
    try {
      const buf = Buffer.alloc(PAGE);
      await fh.read(buf, 0, PAGE, (LOCK_PAGE - 1) * PAGE);
      expect(buf.equals(Buffer.alloc(PAGE))).toBe(true);
    } finally {
      await fh.close();
    }

    // Replay onto an empty file: byte for byte.
    const replayed = path.join(node.root, 'replayed.db');
    await writeFile(replayed, '');
    const a = await runCli(['ltx', 'apply', ...c.chain.map((e) => e.path), '--db', replayed], 240_000);
    expect(a.stderr).toBe('');
    const cmp = await runProcess('cmp', [replayed, node.databaseFile('big.db')], { timeoutMs: 120_000 });
    expect(cmp.stdout + cmp.stderr).toBe('');
    expect(cmp.code).toBe(0);

    // Restart: recovery checksums every page (the lock page excluded) and agrees.
    await node.stop();
    await node.start({ timeoutMs: 120_000 });
    expect((await checkConsistency(node, 'big.db')).postApply).toBe(c.postApply);
    r = await runSqlite3(db, 'PRAGMA quick_check; SELECT count(*), length(v) FROM b WHERE id = 1100;', { timeoutMs: 120_000 });
    expect(r.stdout).toBe('ok\n1|70000\n');
  }, 300_000);
});
