import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fuseMountsAt } from '../../src/fuse/index.js';
import { destroyAllNodes, LiteFSNode, startNode } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';

/*
 * What an operator can get wrong on one machine must not break the node
 * that is already serving: a second `litefs mount` on its mount point, or
 * a second process on its data directory, is refused at startup, and the
 * live node keeps serving as primary with its data intact.
 */

afterEach(destroyAllNodes);

/** litefs.yml for a static primary on a free port, with the given directories. */
function config(dataDir: string, mountDir: string): string {
  return [
    'data:',
    `  dir: ${JSON.stringify(dataDir)}`,
    'fuse:',
    `  dir: ${JSON.stringify(mountDir)}`,
    'http:',
    '  addr: "127.0.0.1:0"',
    'lease:',
    '  type: static',
    '  candidate: true',
    '  hostname: "127.0.0.1"',
    '  advertise-url: "http://127.0.0.1:20202"',
    '',
  ].join('\n');
}

async function sql(node: LiteFSNode, text: string): Promise<string> {
  const r = await runSqlite3(node.path('app.db'), text, { busyTimeoutMs: 5000 });
  if (r.code !== 0) throw new Error(`sqlite3 failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

/** The live node is untouched: still mounted, still primary (its writes succeed), every row there. */
async function expectServing(node: LiteFSNode, rows: string): Promise<void> {
  expect(node.running).toBe(true);
  expect(await fuseMountsAt(node.mountDir)).toHaveLength(1);
  expect(await sql(node, "INSERT INTO t VALUES ('after'); SELECT group_concat(x) FROM t;")).toBe(`${rows},after`);
  expect((await runProcess('cat', [node.path('.lag')], { timeoutMs: 10_000 })).stdout).toBe('+000000000\n');
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

describe('one node per mount point', () => {
  it('a second litefs mount on a live mount point is refused; the live node keeps serving as primary', async () => {
    const live = await startNode();
    await sql(live, "CREATE TABLE t(x); INSERT INTO t VALUES ('one');");
    const second = await LiteFSNode.create({ configText: ({ dataDir }) => config(dataDir, live.mountDir) });
    const { exit, stderr } = await second.startExpectingFailure(15_000);
    expect(exit.code).toBe(1);
    expect(stderr).toContain(`mountpoint ${live.mountDir} is in use`);
    expect(stderr).toContain('ERR_FUSE_ALREADY_MOUNTED');
    expect(stderr).not.toMatch(/clearing/);
    // It refused before creating anything in its own data directory.
    expect(await readdir(second.dataDir)).toEqual([]);
    await expectServing(live, 'one');
    expect(live.logLines().filter((l) => /unmount|session/.test(String(l['msg'])))).toEqual([]);
  });

  it('a mount whose daemon is attached but does not answer is refused too, after a bounded probe', async () => {
    const live = await startNode();
    await sql(live, "CREATE TABLE t(x); INSERT INTO t VALUES ('one');");
    const second = await LiteFSNode.create({ configText: ({ dataDir }) => config(dataDir, live.mountDir) });
    process.kill(live.pid!, 'SIGSTOP');
    let failed: { exit: { code: number | null }; stderr: string };
    try {
      failed = await second.startExpectingFailure(20_000);
    } finally {
      process.kill(live.pid!, 'SIGCONT');
    }
    expect(failed.exit.code).toBe(1);
    expect(failed.stderr).toContain('ERR_FUSE_MOUNT_UNRESPONSIVE');
    expect(failed.stderr).toContain(`mountpoint ${live.mountDir}`);
    await expectServing(live, 'one');
  });
});

describe('one process per data directory', () => {
  it("a second process on the same data directory is refused with the holder's PID; once the holder is gone it starts", async () => {
    const live = await startNode();
    await sql(live, "CREATE TABLE t(x); INSERT INTO t VALUES ('one');");
    const second = await LiteFSNode.create({ configText: ({ mountDir }) => config(live.dataDir, mountDir) });
    const { exit, stderr } = await second.startExpectingFailure(15_000);
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_STORE_DATA_DIR_LOCKED');
    expect(stderr).toContain(`data directory ${live.dataDir} is in use by process ${live.pid}`);
    // Refused before mounting anything.
    expect(await fuseMountsAt(second.mountDir)).toEqual([]);
    await expectServing(live, 'one');

    // A crash leaves no stale lock behind: the kernel drops it with the process.
    await live.kill();
    await second.start();
    expect(await sql(second, 'SELECT group_concat(x) FROM t;')).toBe('one,after');
  });

  it('a mount directory that does not exist fails before the data directory is created', async () => {
    let dataDir = '';
    const node = await LiteFSNode.create({
      configText: ({ dataDir: d }) => {
        dataDir = path.join(d, 'fresh');
        return config(dataDir, path.join(path.dirname(d), 'no-such-dir', 'mnt'));
      },
    });
    const { exit, stderr } = await node.startExpectingFailure(15_000);
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_FUSE_MOUNTPOINT_MISSING');
    expect(await exists(dataDir)).toBe(false);
  });
});
