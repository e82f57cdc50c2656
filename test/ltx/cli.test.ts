import { spawn } from 'node:child_process';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GO_DB, GO_LTX, DbModel, mixedPage, rng, sqlitePage1, withTmpDir } from './helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const MAIN = join(ROOT, 'dist/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], nodeArgs: string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const ltx = (...args: string[]) => run([MAIN, 'ltx', ...args]);

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, (await stat(join(e.parentPath, e.name))).mtimeMs);
  }
  return newest;
}

// The CLI runs from dist/; rebuild only when our sources are newer than the build.
beforeAll(async () => {
  const built = await stat(join(ROOT, 'dist/cli/ltx.js')).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const src = Math.max(
    await newestMtime(join(ROOT, 'src/ltx')),
    await newestMtime(join(ROOT, 'src/cli')),
    await newestMtime(join(ROOT, 'src/internal')),
  );
  if (built < src) {
    const r = await run([join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
    // tsc exits non-zero if another area has type errors, but still emits.
    expect(r.code === 0 || (await stat(join(ROOT, 'dist/cli/ltx.js'))).mtimeMs >= src).toBe(true);
  }
}, 180_000);

describe('litefs ltx checksum', () => {
  it('prints the rolling checksum of the fixture database', async () => {
    expect(await ltx('checksum', GO_DB)).toEqual({ code: 0, stdout: 'fe3831a381c602b9\n', stderr: '' });
  });

  it('exits 1 for an unreadable or invalid database and 2 for usage errors', async () => {
    const missing = await ltx('checksum', '/nonexistent/db');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^\/nonexistent\/db: ENOENT/);
    const notDb = await ltx('checksum', GO_LTX);
    expect(notDb.code).toBe(1);
    expect(notDb.stderr).toContain('ERR_LTX_DB_INVALID');
    const usage = await ltx('checksum');
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
    expect((await ltx('checksum', 'a', 'b')).code).toBe(2);
  });
});

describe('litefs ltx dump', () => {
  it('prints header, page numbers and trailer', async () => {
    const r = await ltx('dump', GO_LTX);
    expect(r.code).toBe(0);
    for (const line of [
      'Flags:      0x00000000',
      'Page size:  4096',
      'Commit:     10',
      'Min TXID:   000000000000000d (13)',
      'Timestamp:  1970-01-01T00:00:00.000Z (0)',
      'Pre-apply:  9c74a15b4e4f246c',
      'Frame #0: pgno=1',
      'Frame #2: pgno=8',
      'Post-apply:    fe3831a381c602b9',
      'File checksum: 9496a29358326fb5',
    ]) {
      expect(r.stdout.split('\n')).toContain(line);
    }
  });

  it('prints one JSON object with --json', async () => {
    const r = await ltx('dump', '--json', GO_LTX);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { Header: Record<string, unknown>; Pages: number[]; Trailer: Record<string, unknown> };
    expect(j.Pages).toEqual([1, 7, 8]);
    expect(j.Header).toMatchObject({
      PageSize: 4096,
      Commit: 10,
      MinTXID: '000000000000000d',
      PreApplyChecksum: '9c74a15b4e4f246c',
      Time: '1970-01-01T00:00:00.000Z',
    });
    expect(j.Trailer).toEqual({ PostApplyChecksum: 'fe3831a381c602b9', FileChecksum: '9496a29358326fb5' });
  });

  it('exits 1 with the reason for a corrupt file, 2 without a file', async () => {
    await withTmpDir(async (dir) => {
      const bad = join(dir, 'bad.ltx');
      const raw = await readFile(GO_LTX);
      raw[9000]! ^= 1;
      await writeFile(bad, raw);
      const r = await ltx('dump', bad);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `${bad}: ERR_LTX_CHECKSUM_MISMATCH: file checksum mismatch: trailer has 9496a29358326fb5, content hashes to ${r.stderr.match(/hashes to ([0-9a-f]{16})/)?.[1]}\n`,
      );
      expect((await ltx('dump')).code).toBe(2);
    });
  });
});

describe('litefs ltx verify', () => {
  it('prints ok lines, and one "FILE: reason" line per bad file with exit 1', async () => {
    await withTmpDir(async (dir) => {
      const raw = await readFile(GO_LTX);
      const trunc = join(dir, 'trunc.ltx');
      await writeFile(trunc, raw.subarray(0, 5000));
      const notLtx = join(dir, 'x.ltx');
      await writeFile(notLtx, 'hello, this is not an LTX file at all, not even close to one. '.repeat(3));
      const r = await ltx('verify', GO_LTX, trunc, notLtx);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe(`${GO_LTX}: ok (txid 000000000000000d-000000000000000d, 3 pages, commit 10, post-apply fe3831a381c602b9)\n`);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(new RegExp(`^${trunc}: ERR_LTX_TRUNCATED: `));
      expect(lines[1]).toMatch(new RegExp(`^${notLtx}: ERR_LTX_BAD_MAGIC: `));
      expect((await ltx('verify', GO_LTX)).code).toBe(0);
    });
  });

  it('applies the strict checks only with --strict', async () => {
    await withTmpDir(async (dir) => {
      const extra = join(dir, 'extra.ltx');
      await writeFile(extra, Buffer.concat([await readFile(GO_LTX), Buffer.from([0])]));
      expect((await ltx('verify', extra)).code).toBe(0);
      const strict = await ltx('verify', '--strict', extra);
      expect(strict.code).toBe(1);
      expect(strict.stderr).toContain('ERR_LTX_TRAILING_DATA');
      expect((await ltx('verify')).code).toBe(2);
      const unknown = await ltx('verify', '--frobnicate', GO_LTX);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    });
  });
});

describe('litefs ltx apply', () => {
  async function setup(dir: string) {
    const rand = rng(9);
    const db = new DbModel(1024);
    const files: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const commit = 3 + i;
      const changes = new Map<number, Uint8Array>([[1, sqlitePage1(1024, commit, i)]]);
      changes.set(commit, mixedPage(rand, 1024));
      changes.set(2, mixedPage(rand, 1024));
      if (i === 1) for (let p = 3; p < commit; p++) changes.set(p, mixedPage(rand, 1024));
      const path = join(dir, `tx${i}.ltx`);
      await writeFile(path, db.tx(changes, commit, { flags: i % 2 }));
      files.push(path);
    }
    return { db, files };
  }

  it('applies a chain and reports the new position', async () => {
    await withTmpDir(async (dir) => {
      const { db, files } = await setup(dir);
      const dbPath = join(dir, 'app.db');
      const r = await ltx('apply', ...files, '--db', dbPath);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`position 0000000000000004/${db.checksum().toString(16).padStart(16, '0')}`);
      expect(Buffer.from(db.file()).equals(await readFile(dbPath))).toBe(true);
      expect((await ltx('checksum', dbPath)).stdout.trim()).toBe(db.checksum().toString(16).padStart(16, '0'));
    });
  });

  it('refuses a gap and a checksum mismatch, leaving the database byte-identical', async () => {
    await withTmpDir(async (dir) => {
      const { files } = await setup(dir);
      const dbPath = join(dir, 'app.db');
      expect((await ltx('apply', files[0]!, '--db', dbPath)).code).toBe(0);
      const before = await readFile(dbPath);

      const gap = await ltx('apply', files[1]!, files[3]!, '--db', dbPath);
      expect(gap.code).toBe(1);
      expect(gap.stderr.trim().split('\n')).toHaveLength(1);
      expect(gap.stderr).toContain('ERR_LTX_NOT_CONTIGUOUS');
      expect(before.equals(await readFile(dbPath))).toBe(true);

      const mismatch = await ltx('apply', files[2]!, '--db', dbPath);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toContain('ERR_LTX_DB_CHECKSUM_MISMATCH');
      expect(before.equals(await readFile(dbPath))).toBe(true);

      expect((await ltx('apply', ...files.slice(1), '--db', dbPath)).code).toBe(0);
    });
  });

  it('exits 2 without --db or files', async () => {
    const noDb = await ltx('apply', GO_LTX);
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toMatch(/--db/);
    expect((await ltx('apply', '--db', '/tmp/x.db')).code).toBe(2);
  });
});

describe('litefs ltx help and usage', () => {
  it('prints help for every subcommand and exits 0', async () => {
    for (const sub of ['dump', 'verify', 'checksum', 'apply']) {
      const r = await ltx(sub, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`usage: litefs ltx ${sub}`)).toBe(true);
    }
    const top = await ltx('--help');
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('checksum DBFILE');
  });

  it('exits 2 with a one-line reason for unknown or missing commands', async () => {
    const unknown = await ltx('frob');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect((await ltx()).code).toBe(2);
  });
});

describe('CRC fallback without WebAssembly', () => {
  it('uses the JS kernel under --jitless and gets the same values', async () => {
    const script = `import('${join(ROOT, 'dist/ltx/index.js')}').then(async (m) => {
      const db = await m.checksumDatabaseFile(${JSON.stringify(GO_DB)});
      console.log(m.crc64Engine(), m.crc64(new TextEncoder().encode('123456789')).toString(16), db.toString(16));
    })`;
    const r = await run(['--jitless', '--input-type=module', '-e', script]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('js b90956c775a41001 fe3831a381c602b9');
  });
});
