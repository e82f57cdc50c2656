import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fuseMountsAt, type DevFuseTransport, type FuseMount } from '../../src/fuse/index.js';
import { makeMountDir, removeMountDir } from '../helpers/mounts.js';
import { runProcess, type InteractiveChild } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { withTimeout } from '../helpers/wait.js';
import { startDaemon } from './daemon-process.js';
import { MemfsMounts } from './fixture.js';

const dirs: string[] = [];
const daemons: InteractiveChild[] = [];
const files: string[] = [];
const mounts = new MemfsMounts();
afterEach(async () => {
  for (const d of daemons.splice(0)) {
    d.kill('SIGKILL');
    await d.exited;
  }
  await mounts.unmountAll();
  for (const d of dirs.splice(0)) await removeMountDir(d);
  for (const f of files.splice(0)) await rm(f, { force: true });
});

/** Starts the memfs daemon with exactly `env` and waits until it is mounted. */
async function daemonWith(env: NodeJS.ProcessEnv, ioFile?: string): Promise<{ dir: string; daemon: InteractiveChild }> {
  const dir = await makeMountDir();
  dirs.push(dir);
  const daemon = startDaemon(dir, { mode: 'exithook', env, ioFile });
  daemons.push(daemon);
  expect(await daemon.waitForLine(/^(mounted|error)/, 60_000)).toBe(`mounted ${dir}`);
  return { dir, daemon };
}

async function daemonStats(daemon: InteractiveChild): Promise<Record<string, unknown>> {
  daemon.writeLine('stats');
  return JSON.parse((await daemon.waitForLine(/^stats /)).slice('stats '.length)) as Record<string, unknown>;
}

function inserts(n: number): string {
  let sql = 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n';
  for (let i = 0; i < n; i++) sql += `INSERT INTO t(id, v) VALUES (${i}, 'row-${i}');\n`;
  return sql;
}

describe('a daemon in a separate process', () => {
  it("started without UV_THREADPOOL_SIZE (libuv's 4-thread pool), serves sqlite3 while every handler does fs.promises I/O", async () => {
    const ioFile = path.join(os.tmpdir(), `fuse-iofile-${process.pid}-${Date.now()}`);
    files.push(ioFile);
    await writeFile(ioFile, '');
    const env = { ...process.env };
    delete env.UV_THREADPOOL_SIZE;
    const { dir, daemon } = await daemonWith(env, ioFile);
    // The variable really is absent from the daemon's start-time environment.
    const environ = await readFile(`/proc/${daemon.pid}/environ`, 'latin1');
    expect(environ.split('\0').some((e) => e.startsWith('UV_THREADPOOL_SIZE='))).toBe(false);

    const db = `${dir}/test.db`;
    const r = await runSqlite3(db, inserts(300), { timeoutMs: 90_000 });
    expect(r.timedOut).toBe(false);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const check = await runSqlite3(db, 'PRAGMA integrity_check; SELECT count(*), sum(id) FROM t;', { timeoutMs: 30_000 });
    expect(check.stdout).toBe('ok\n300|44850\n');

    const stats = await daemonStats(daemon);
    expect(stats.fileIoOps as number).toBeGreaterThan(300); // the pool did real work for the handlers
    expect(stats.inflight).toBe(0);
    daemon.writeLine('exit');
    expect((await daemon.exited).code).toBe(0);
    expect(await fuseMountsAt(dir)).toEqual([]);
  });
});

/** Reaching into the session for its transport: only a test handles reader threads. */
function transportOf(m: FuseMount): DevFuseTransport {
  return (m.session as unknown as { transport: DevFuseTransport }).transport;
}

describe('reader threads of a mount', () => {
  it('workerThreads: 2 starts two threads; both exit when the mount goes, and only then is /dev/fuse closed', async () => {
    const { dir, m } = await mounts.mount({ mount: { workerThreads: 2 }, seed: (f) => f.writeFile('f', 'data\n') });
    const transport = transportOf(m);
    const threads = transport.readerThreadsForTesting()!;
    expect(threads.live).toBe(2);
    const cats = await Promise.all([1, 2, 3, 4].map(() => runProcess('cat', [`${dir}/f`])));
    expect(cats.map((c) => c.stdout)).toEqual(['data\n', 'data\n', 'data\n', 'data\n']);
    await m.unmount();
    expect((await m.ended).reason).toBe('unmounted');
    await withTimeout(threads.whenAllExited(), 10_000, 'both reader threads to exit');
    expect(threads.live).toBe(0);
    expect(transport.isClosed).toBe(true);
  });

  it("one that dies ends the session with reason 'error'; the mount is removed and the waiting client does not hang", async () => {
    const { dir, m } = await mounts.mount({ seed: (f) => f.writeFile('f', 'data\n') });
    expect((await runProcess('cat', [`${dir}/f`])).stdout).toBe('data\n');
    const transport = transportOf(m);
    const [thread] = transport.readerThreadsForTesting()!.threadsForTesting();
    const terminated = thread!.terminate(); // takes effect when its read(2) returns
    const client = runProcess('stat', [`${dir}/g`], { timeoutMs: 30_000 });
    await withTimeout(terminated, 20_000, 'the reader thread to die');
    const end = await withTimeout(m.ended, 20_000, 'the session to end');
    expect(end.reason).toBe('error');
    expect(end.error).toMatchObject({ code: 'ERR_FUSE_READER_CRASHED' });
    const c = await client;
    expect(c.timedOut).toBe(false);
    expect(c.code).not.toBe(0); // ENOENT if answered in time, else the connection's end
    await waitNoMount(dir, m);
    expect(transport.isClosed).toBe(true);
  });
});

async function waitNoMount(dir: string, m: FuseMount): Promise<void> {
  for (let i = 0; i < 250 && (await fuseMountsAt(dir)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(await fuseMountsAt(dir)).toEqual([]);
  expect(m.isMounted).toBe(false);
}
