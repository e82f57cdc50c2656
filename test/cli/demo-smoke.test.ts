import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { clearFuseMounts, fuseMountsAt } from '../../src/fuse/index.js';
import { CLI_PATH } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';

/**
 * The README's first command, in the smoke mode CI uses: three real
 * `litefs mount` processes on loopback, rows written on the primary with
 * the sqlite3 CLI, checked on both replicas, everything stopped and
 * unmounted again.
 */
const NODES = ['node1', 'node2', 'node3'];
let dir: string | null = null;

afterEach(async () => {
  if (dir === null) return;
  // Whatever happened: stop the demo's own processes (it kills them by the
  // PIDs it recorded) and remove any mount left behind.
  await runProcess(process.execPath, [CLI_PATH, 'demo', 'stop', '--dir', dir], { timeoutMs: 60_000 }).catch(() => null);
  for (const n of NODES) await clearFuseMounts(path.join(dir, n, 'mnt')).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  dir = null;
});

it('litefs demo --smoke starts three nodes, sees the rows on both replicas, and leaves no mount behind', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'litefs-demo-smoke-'));
  const r = await runProcess(process.execPath, [CLI_PATH, 'demo', '--smoke', '--dir', dir], { timeoutMs: 120_000 });
  expect(r.timedOut).toBe(false);
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout).toContain('smoke test passed');
  // Both replicas printed the three rows the primary wrote.
  expect(r.stdout.split('hello from the primary').length - 1).toBeGreaterThanOrEqual(2);
  for (const n of NODES) expect(await fuseMountsAt(path.join(dir, n, 'mnt'))).toEqual([]);
  expect((await readdir(dir)).sort()).toEqual(expect.arrayContaining(NODES));
});
