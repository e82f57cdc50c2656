import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, poll, sleep, type ClusterNode } from '../helpers/cluster.js';
import { CLI_PATH } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';

/*
 * What a replica says about itself must be true: `ready`, `.lag`, `litefs
 * status` and the log. Two `litefs mount` daemons with a static lease; the
 * replica (node1) starts before its primary, as it may at any boot.
 */

let cluster: Cluster;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'litefs-status-'));
  // Retries capped at 1 s (default 5 s): the primary's restart below is noticed sooner.
  cluster = await Cluster.create({ size: 2, lease: { type: 'static' }, debug: true, reconnectDelay: '1s' });
});

afterAll(async () => {
  await cluster?.destroy();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

function cli(args: string[], timeoutMs = 30_000): ReturnType<typeof runProcess> {
  return runProcess(process.execPath, [CLI_PATH, ...args], { timeoutMs });
}

/** Log lines of `node` at warn (40) or above. */
function warnings(node: ClusterNode): string[] {
  return node.node
    .logLines(true)
    .filter((l) => l['level'] === 'warn' || l['level'] === 'error' || (typeof l['level'] === 'number' && l['level'] >= 40))
    .map((l) => String(l['msg']));
}

function messages(node: ClusterNode, re: RegExp): string[] {
  return node.node
    .logLines(true)
    .map((l) => String(l['msg']))
    .filter((m) => re.test(m));
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

describe('a replica tells the truth about itself', () => {
  it('starting before its primary: no warning, then ready with a lag near zero while idle, and status names this host', async () => {
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    await n1.start();
    // Not caught up with anything yet: not ready, and the lag is a real (small, growing) number.
    expect((await n1.info()).ready).toBe(false);
    const early = await n1.lagFile();
    expect(early).toBeLessThan(60_000);
    await sleep(300);
    await n0.start();
    expect(await cluster.findPrimary()).toBe(n0);
    const made = await n0.sql('app.db', "CREATE TABLE t(x); INSERT INTO t VALUES ('one');");
    expect(made.code, made.stderr).toBe(0);
    await cluster.waitConverged('app.db');
    // That transaction's own delay is the lag until the next heartbeat (within a second).
    await sleep(1200);

    // Idle and caught up: heartbeats every second, and the lag stays near zero between them.
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      samples.push(await n1.lagFile());
      await sleep(120);
    }
    expect(Math.max(...samples), `.lag samples ${samples.join(',')}`).toBeLessThan(50);

    // No scheme in -url; the replica's own host name, not its primary's.
    const status = await cli(['status', '-url', `127.0.0.1:${n1.port}`]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`(${os.hostname()})`);
    expect(status.stdout).not.toContain('(node0)');
    expect(status.stdout).toMatch(/^primary +node0$/m);
    expect(status.stdout).toMatch(/^ready +yes$/m);

    // The primary was not up when the replica first tried: said once, as information, and its end too.
    expect(warnings(n1)).toEqual([]);
    expect(messages(n1, /^waiting for the primary node0/)).toHaveLength(1);
    expect(messages(n1, /^following the primary node0 .*after waiting/)).toHaveLength(1);
  });

  it('losing its primary: not ready, `litefs run` does not start the app, .lag grows, one warning per outage, recovery said', async () => {
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    await n0.node.kill();
    await poll(async () => ((await n1.info()).ready ? undefined : true), 'node1 to stop being ready', 10_000);

    const marker = path.join(tmp, 'app-ran');
    const run = await cli(['run', '-url', n1.url, '-timeout', '2', '--', 'touch', marker]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/not ready within 2s/);
    expect(await exists(marker)).toBe(false);
    const status = await cli(['status', '-url', n1.url]);
    expect(status.stdout).toMatch(/^ready +no$/m);

    const lags: number[] = [];
    for (let i = 0; i < 4; i++) {
      lags.push(await n1.lagFile());
      await sleep(400);
    }
    for (let i = 1; i < lags.length; i++) expect(lags[i], `.lag samples ${lags.join(',')}`).toBeGreaterThan(lags[i - 1]!);
    expect(lags.at(-1)!).toBeLessThan(2147483647);

    // Several attempts failed (debug), but the outage was said once.
    await poll(async () => (messages(n1, /^replication stream failed/).length >= 4 ? true : undefined), 'four failed attempts', 15_000);
    expect(messages(n1, /^lost the primary node0/)).toHaveLength(1);
    expect(warnings(n1)).toEqual([expect.stringMatching(/^lost the primary node0/)]);

    // The primary comes back: caught up again, ready, and said so once.
    await n0.start();
    await poll(async () => ((await n1.info()).ready ? true : undefined), 'node1 ready again', 20_000);
    expect(messages(n1, /^following the primary node0 .* again after/)).toHaveLength(1);
    const ran = await cli(['run', '-url', n1.url, '-timeout', '5s', '--', 'touch', marker]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(await exists(marker)).toBe(true);
  });
});
