import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep } from '../helpers/cluster.js';
import { CLI_PATH } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';

/*
 * The CLI as systemd or compose starts it: `litefs run` next to `litefs
 * mount`, not after it; `-url` written as in litefs.yml; messages an
 * operator can read.
 */

let cluster: Cluster;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'litefs-cli-'));
  cluster = await Cluster.create({ size: 1, lease: { type: 'static' } });
});

afterAll(async () => {
  await cluster?.destroy();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

function cli(args: string[], timeoutMs = 30_000): ReturnType<typeof runProcess> {
  return runProcess(process.execPath, [CLI_PATH, ...args], { timeoutMs });
}

describe('litefs run and status', () => {
  it('`litefs run` started before the node waits for its API, then runs the command once the node is ready', async () => {
    const node = cluster.node(0);
    const marker = path.join(tmp, 'ran');
    let exited = false;
    const run = cli(['run', '-url', `127.0.0.1:${node.port}`, '-timeout', '30s', '--', 'sh', '-c', `echo ran > ${marker}`], 60_000);
    void run.then(() => {
      exited = true;
    });
    await sleep(700);
    expect(exited).toBe(false);
    await node.start();
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(marker, 'utf8')).toBe('ran\n');
    // Said once what it was waiting for, not once per attempt.
    expect(r.stderr.match(/waiting for the node's API/g)).toHaveLength(1);

    const status = await cli(['status', '-url', `127.0.0.1:${node.port}`]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^role +primary$/m);
  });

  it('`litefs run` gives up at its timeout when no node ever answers', async () => {
    const port = cluster.node(0).port;
    await cluster.node(0).node.stop();
    const started = Date.now();
    const r = await cli(['run', '-url', `http://127.0.0.1:${port}`, '-timeout', '1s', '--', 'true']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not come up in time \(.*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('`run --help` lists -timeout once; a file error names its code once', async () => {
    const help = await cli(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.match(/-timeout/g)).toHaveLength(1);
    const missing = await cli(['ltx', 'dump', path.join(tmp, 'missing.ltx')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ENOENT: no such file or directory');
    expect(missing.stderr).not.toContain('ENOENT: ENOENT');
  });
});
