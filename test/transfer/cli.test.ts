import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumDatabaseFile, formatPos, hex64 } from '../../src/ltx/index.js';
import { formatProgress, ProgressBar } from '../../src/cli/import.js';
import { freePort } from '../helpers/cluster.js';
import { destroyAllNodes, startNode, type LiteFSNode } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';
import { CLI, litefs, makeDatabase, tempDir } from './helpers.js';

/*
 * `litefs import` and `litefs export` as an operator runs them: exact exit
 * codes, stdout and stderr for usage errors, refusals, unreachable nodes,
 * unsafe input files and bad downloads; the progress bar on a terminal.
 */

let work: string;
let small: string;

beforeAll(async () => {
  work = await tempDir('litefs-transfer-cli-');
  small = path.join(work, 'small.db');
  await makeDatabase(small, { rows: 20, blob: 100 });
});

afterAll(async () => {
  await destroyAllNodes();
  await rm(work, { recursive: true, force: true });
});

describe('usage', () => {
  const cases: [string[], string][] = [
    [['import'], 'litefs import: missing -name DB (run "litefs import --help")'],
    [['import', '-name', 'app.db'], 'litefs import: missing FILE (run "litefs import --help")'],
    [['import', '-name', 'app.db', 'a.db', 'b.db'], 'litefs import: expected one FILE, got 2: a.db b.db (run "litefs import --help")'],
    [['import', '-bogus', 'x', 'a.db'], 'litefs import: unknown flag -bogus (run "litefs import --help")'],
    [['import', '-name'], 'litefs import: flag -name needs a value (run "litefs import --help")'],
    [['import', '-name', 'a', '-url', 'not a url', 'a.db'], 'litefs import: invalid -url "not a url" (run "litefs import --help")'],
    [
      ['export', '-name', 'a', '-url', 'ftp://h:1', 'a.db'],
      'litefs export: invalid -url "ftp://h:1": only http:// and https:// are supported (run "litefs export --help")',
    ],
    [['export', '--name=a'], 'litefs export: missing FILE (run "litefs export --help")'],
    [['export', '-help=yes'], 'litefs export: flag -help takes no value (run "litefs export --help")'],
  ];
  for (const [args, message] of cases) {
    it(`litefs ${args.join(' ')} → exit 2`, async () => {
      const r = await litefs(args);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 2, stdout: '', stderr: `${message}\n` });
    });
  }

  it('--help on both commands, and both listed by litefs --help', async () => {
    for (const cmd of ['import', 'export']) {
      for (const flag of ['--help', '-help', '-h']) {
        const r = await litefs([cmd, flag]);
        expect(r.code).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout.startsWith(`usage: litefs ${cmd} -name DB [-url URL] [-token TOKEN]`)).toBe(true);
        expect(r.stdout).toContain('-url URL');
      }
    }
    const top = await litefs(['--help']);
    expect(top.stdout).toMatch(/\n {2}import +replace a database on the primary with a SQLite file\n/);
    expect(top.stdout).toMatch(/\n {2}export +write a consistent copy of a database to a file\n/);
  });
});

describe('without a reachable node', () => {
  it('import: a missing FILE, a hot journal or WAL frames next to FILE → exit 1 before any request', async () => {
    const missing = path.join(work, 'missing.db');
    const r1 = await litefs(['import', '-name', 'a', '-url', 'http://127.0.0.1:1', missing]);
    expect({ code: r1.code, stderr: r1.stderr }).toEqual({
      code: 1,
      stderr: `litefs import: cannot read ${missing}: ENOENT: no such file or directory, stat '${missing}'\n`,
    });

    const hot = path.join(work, 'hot.db');
    await writeFile(hot, await readFile(small));
    await writeFile(`${hot}-journal`, Buffer.concat([Buffer.from('d9d505f920a163d7', 'hex'), Buffer.alloc(504)]));
    const r2 = await litefs(['import', '-name', 'a', '-url', 'http://127.0.0.1:1', hot]);
    expect({ code: r2.code, stderr: r2.stderr }).toEqual({
      code: 1,
      stderr: `litefs import: ${hot}-journal is a hot journal: ${hot} is mid-transaction or its writer crashed; open it once with sqlite3 to roll back, then import\n`,
    });

    const wal = path.join(work, 'walfr.db');
    await writeFile(wal, await readFile(small));
    await writeFile(`${wal}-wal`, Buffer.alloc(32 + 24 + 4096));
    const r3 = await litefs(['import', '-name', 'a', '-url', 'http://127.0.0.1:1', wal]);
    expect({ code: r3.code, stderr: r3.stderr }).toEqual({
      code: 1,
      stderr: `litefs import: ${wal}-wal holds transactions that are not in ${wal} yet; checkpoint first: sqlite3 ${wal} "PRAGMA wal_checkpoint(TRUNCATE)"\n`,
    });
  });

  it('unreachable node → exit 1 naming the URL; FILE is left alone', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const r1 = await litefs(['import', '-name', 'a', '-url', url, small]);
    expect({ code: r1.code, stdout: r1.stdout, stderr: r1.stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: `litefs import: import to ${url} failed: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    });
    const keep = path.join(work, 'keep.db');
    await writeFile(keep, 'precious');
    const r2 = await litefs(['export', '-name', 'a', '-url', url, keep]);
    expect({ code: r2.code, stderr: r2.stderr }).toEqual({
      code: 1,
      stderr: `litefs export: export from ${url} failed: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    });
    expect(await readFile(keep, 'utf8')).toBe('precious');
  });
});

/** A stand-in node whose /export answers whatever the test says. */
async function fakeNode(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const srv = http.createServer(handler);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}

describe('export refuses a copy it cannot verify', () => {
  it('checksum mismatch with Litefs-Pos → exit 1, temp file removed, FILE not created', async () => {
    const image = await readFile(small);
    const sum = await checksumDatabaseFile(small);
    const wrong = { txid: 7n, postApplyChecksum: sum ^ 1n };
    const node = await fakeNode((_req, res) => {
      res.writeHead(200, { 'Content-Length': image.length, 'Litefs-Pos': formatPos(wrong) });
      res.end(image);
    });
    try {
      const out = path.join(work, 'mismatch.db');
      await writeFile(out, 'old copy');
      const r = await litefs(['export', '-name', 'a', '-url', node.url, out]);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 1,
        stdout: '',
        stderr: `litefs export: checksum mismatch: the copy has checksum ${hex64(sum)}, position ${formatPos(wrong)} has ${hex64(wrong.postApplyChecksum)}; removed ${out}.tmp\n`,
      });
      expect((await readdir(work)).filter((f) => f.startsWith('mismatch'))).toEqual([]);
    } finally {
      await node.close();
    }
  });

  it('a body cut short → exit 1, temp file removed', async () => {
    const image = await readFile(small);
    const node = await fakeNode((_req, res) => {
      res.writeHead(200, { 'Content-Length': image.length, 'Litefs-Pos': formatPos({ txid: 1n, postApplyChecksum: 1n << 63n }) });
      res.write(image.subarray(0, 4096), () => res.destroy());
    });
    try {
      const out = path.join(work, 'short.db');
      const r = await litefs(['export', '-name', 'a', '-url', node.url, out]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^litefs export: export of a failed after \d+ bytes: .+\n$/);
      expect((await readdir(work)).filter((f) => f.startsWith('short'))).toEqual([]);
    } finally {
      await node.close();
    }
  });
});

describe('against a daemon', () => {
  let node: LiteFSNode;
  let url: string;

  beforeAll(async () => {
    node = await startNode();
    url = `http://127.0.0.1:${String(node.logLines().find((l) => l['msg'] === 'http: listening')?.['port'])}`;
    const r = await litefs(['import', '-name', 'app.db', '-url', url, small]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a garbage file → exit 1 with the 400 reason; position and history unchanged', async () => {
    const before = (await readFile(node.path('app.db-pos'), 'utf8')).trim();
    const ltx = (await readdir(node.ltxDir('app.db'))).sort();
    const garbage = path.join(work, 'garbage.db');
    await writeFile(garbage, Buffer.alloc(8192, 0x41));
    const r = await litefs(['import', '-name', 'app.db', '-url', url, garbage]);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'litefs import: the node refused the import (HTTP 400): not a SQLite database: the file does not start with "SQLite format 3\\0"\n',
    });
    expect((await readFile(node.path('app.db-pos'), 'utf8')).trim()).toBe(before);
    expect((await readdir(node.ltxDir('app.db'))).sort()).toEqual(ltx);
  });

  it('export of a missing database → exit 1 with the 404 reason; FILE untouched', async () => {
    const keep = path.join(work, 'keep2.db');
    await writeFile(keep, 'precious');
    const r = await litefs(['export', '-name', 'nope.db', '-url', url, keep]);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: 'litefs export: the node refused the export (HTTP 404): database "nope.db" not found\n',
    });
    expect(await readFile(keep, 'utf8')).toBe('precious');
  });

  it('shows a progress bar on a terminal for a file of several MB, and none otherwise', async () => {
    const big = path.join(work, 'progress.db');
    await makeDatabase(big, { rows: 2000, blob: 4000 });
    expect((await stat(big)).size).toBeGreaterThan(4 << 20);
    const quoted = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const cmd = [process.execPath, CLI, 'import', '-name', 'big.db', '-url', url, big].map(quoted).join(' ');
    // script(1) gives the command a pseudo-terminal: stderr is a TTY.
    const tty = await runProcess('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 120_000 });
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/\ruploading \[#{10,40}\] +100\.0% +\d+\.\d\/\d+\.\d MB +\d+\.\d MB\/s/);
    expect(tty.stdout).toMatch(/big\.db: imported .+; position 0000000000000001\/[0-9a-f]{16}/);
    const plain = await litefs(['import', '-name', 'big.db', '-url', url, big]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toBe('');
    expect(plain.stdout).toMatch(/^big\.db: imported .+; position 0000000000000002\/[0-9a-f]{16}\n$/);
  });
});

describe('progress bar', () => {
  it('formats bar, percent, MB and MB/s', () => {
    expect(formatProgress('uploading', 52_400_000, 104_800_000, 1000, 100)).toBe(
      'uploading [####################--------------------]   50.0%  52.4/104.8 MB  52.4 MB/s',
    );
    expect(formatProgress('x', 0, 0, 0, 40)).toBe('x [##########]  100.0%  0.0/0.0 MB  - MB/s');
  });

  it('redraws at most every 100 ms and ends with a newline', () => {
    let t = 0;
    const out: string[] = [];
    const bar = new ProgressBar({ write: (s: string) => out.push(s), columns: 80 }, 1000, 'up', () => t);
    bar.update(100);
    t = 50;
    bar.update(200);
    t = 150;
    bar.update(300);
    bar.finish();
    bar.finish();
    expect(out.length).toBe(4);
    expect(out[0]).toMatch(/^\rup \[.*\] +10\.0% /);
    expect(out[1]).toMatch(/^\rup \[.*\] +30\.0% /);
    expect(out[2]).toMatch(/^\rup \[.*\] +30\.0% /);
    expect(out[3]).toBe('\n');
  });
});
