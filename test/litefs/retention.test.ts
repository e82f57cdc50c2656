import { mkdir, readdir, rm, rmdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLtxFilename } from '../../src/ltx/index.js';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { waitUntil } from '../helpers/wait.js';
import { checkConsistency } from './chain.js';

afterEach(destroyAllNodes);

async function ltxNames(node: LiteFSNode, db: string): Promise<string[]> {
  return (await readdir(node.ltxDir(db))).filter((n) => parseLtxFilename(n) !== null).sort();
}

async function commit(node: LiteFSNode, db: string, n: number): Promise<void> {
  let text = '';
  for (let i = 0; i < n; i++) text += `INSERT INTO t(v) VALUES (randomblob(100));\n`;
  const r = await runSqlite3(node.path(db), text, { busyTimeoutMs: 5000 });
  expect(r.stderr).toBe('');
}

describe('LTX retention', () => {
  it('removes LTX files older than the retention, always keeps the newest, and the history stays usable', async () => {
    const node = await startNode({ retention: '1s', retentionMonitorInterval: '100ms' });
    const r = await runSqlite3(node.path('r.db'), 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);');
    expect(r.code).toBe(0);
    await commit(node, 'r.db', 5);
    expect(await ltxNames(node, 'r.db')).toHaveLength(6);
    // Everything but the newest file ages out.
    let names: string[] = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      names = await ltxNames(node, 'r.db');
      if (names.length === 1) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(names).toEqual(['0000000000000006-0000000000000006.ltx']);
    // The newest file is never removed, however old.
    await new Promise((res) => setTimeout(res, 1500));
    expect(await ltxNames(node, 'r.db')).toEqual(['0000000000000006-0000000000000006.ltx']);
    // New commits continue the chain from the kept file; a restart accepts it.
    await commit(node, 'r.db', 2);
    const c = await checkConsistency(node, 'r.db', { allowTrimmedStart: true });
    expect(c.chain.map((e) => e.header.minTXID)).toEqual([6n, 7n, 8n].slice(-c.chain.length));
    await node.stop();
    await node.start();
    expect((await checkConsistency(node, 'r.db', { allowTrimmedStart: true })).txid).toBe(8n);
  });

  it('reports a file it cannot remove, and still removes the others', async () => {
    const node = await startNode({ retention: '1h', retentionMonitorInterval: '100ms' });
    const r = await runSqlite3(node.path('e.db'), 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);');
    expect(r.code).toBe(0);
    await commit(node, 'e.db', 3);
    const names = await ltxNames(node, 'e.db');
    expect(names).toHaveLength(4);
    // A directory under an LTX file's name cannot be unlinked (EISDIR):
    // it sorts first, so a loop that stops at the first error would remove nothing.
    const blocker = path.join(node.ltxDir('e.db'), names[0]!);
    await rm(blocker);
    await mkdir(blocker);
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const n of names.slice(0, 3)) await utimes(path.join(node.ltxDir('e.db'), n), old, old);

    await waitUntil(() => node.logLines().some((l) => l.msg === 'LTX retention failed'), 'the retention error in the log', 15_000);
    const line = node.logLines().find((l) => l.msg === 'LTX retention failed')!;
    expect(line.level).toBe('error');
    expect(line.db).toBe('e.db');
    expect(JSON.stringify(line.err)).toContain(names[0]!);
    expect(JSON.stringify(line.err)).toContain('ERR_STORE_RETENTION');
    // The other two expired files went; the newest stays.
    expect(await ltxNames(node, 'e.db')).toEqual([names[0]!, names[3]!]);
    await rmdir(blocker);
    await commit(node, 'e.db', 1);
    expect((await checkConsistency(node, 'e.db', { allowTrimmedStart: true })).txid).toBe(5n);
  });
});
