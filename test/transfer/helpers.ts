import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { silentLogger } from '../../src/internal/log.js';
import { CHECKSUM_FLAG, DatabaseChecksum, lockPgno } from '../../src/ltx/index.js';
import { ApiServer } from '../../src/http/server.js';
import { transferRoutesFor, type TransferContext } from '../../src/http/transfer.js';
import { Store } from '../../src/store/store.js';
import { runProcess, type ChildResult } from '../helpers/processes.js';
import { runPython } from '../helpers/sqlite-clients.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = process.env.LITEFS_CLI ?? path.join(repoRoot, 'dist/cli/main.js');

/** Runs the compiled `litefs` CLI in a child process. */
export function litefs(args: string[], opts: { timeoutMs?: number } = {}): Promise<ChildResult> {
  return runProcess(process.execPath, [CLI, ...args], { timeoutMs: opts.timeoutMs ?? 120_000 });
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface MakeDatabaseOptions {
  table?: string;
  column?: string;
  rows: number;
  /** Bytes of random blob per row. */
  blob: number;
  pageSize?: number;
  wal?: boolean;
}

/**
 * Builds a SQLite database natively (python3's sqlite3 in a child process),
 * in rollback-journal mode unless `wal`. Prints nothing; throws on failure.
 */
export async function makeDatabase(file: string, o: MakeDatabaseOptions): Promise<void> {
  const code = String.raw`
import sqlite3, sys
path, table, column, rows, blob, page_size, wal = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == '1'
db = sqlite3.connect(path, isolation_level=None)
db.execute('PRAGMA page_size=%d' % page_size)
db.execute('PRAGMA journal_mode=%s' % ('WAL' if wal else 'DELETE'))
db.execute('BEGIN')
db.execute('CREATE TABLE %s(id INTEGER PRIMARY KEY, %s BLOB)' % (table, column))
db.execute('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) INSERT INTO %s(id, %s) SELECT x, randomblob(?) FROM c' % (table, column), (rows, blob))
db.execute('COMMIT')
if wal:
    db.execute('PRAGMA wal_checkpoint(TRUNCATE)')
db.close()
`;
  const r = await runPython(
    code,
    [file, o.table ?? 't', o.column ?? 'v', String(o.rows), String(o.blob), String(o.pageSize ?? 4096), o.wal ? '1' : '0'],
    {
      timeoutMs: 120_000,
    },
  );
  if (r.code !== 0) throw new Error(`building ${file} failed: ${r.stderr}`);
}

/** Runs SQL with python3 against a file (not on a mount served by this process); returns stdout lines. */
export async function querySqlite(file: string, sql: string): Promise<string[]> {
  const code = String.raw`
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
for row in db.execute(sys.argv[2]).fetchall():
    print('|'.join(str(c) for c in row))
`;
  const r = await runPython(code, [file, sql], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${sql} on ${file} failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/**
 * Page 1 as the import writes it: bytes 18/19 = 1 (rollback mode), change
 * counter and version-valid-for = max(old, upload) + 1, page count = pages
 * in the file, schema cookie = max(old, upload) + 1.
 */
export function patchPage1(page1: Buffer, pageCount: number, old: { counter: number; cookie: number } = { counter: 0, cookie: 0 }): Buffer {
  const p = Buffer.from(page1);
  const counter = Math.max(old.counter, p.readUInt32BE(24)) + 1;
  const cookie = Math.max(old.cookie, p.readUInt32BE(40)) + 1;
  p[18] = 1;
  p[19] = 1;
  p.writeUInt32BE(counter, 24);
  p.writeUInt32BE(pageCount, 28);
  p.writeUInt32BE(cookie, 40);
  p.writeUInt32BE(counter, 92);
  return p;
}

/** The rolling checksum of a database image held in memory (lock page excluded). */
export function checksumOf(image: Buffer, pageSize: number): bigint {
  const n = image.length / pageSize;
  if (n === 0) return CHECKSUM_FLAG;
  const sum = new DatabaseChecksum(pageSize);
  const lock = lockPgno(pageSize);
  for (let p = 1; p <= n; p++) if (p !== lock) sum.addPage(p, image.subarray((p - 1) * pageSize, p * pageSize));
  return sum.value;
}

/** Reads a database file and returns it as the import will store it. */
export async function expectedImage(file: string, old?: { counter: number; cookie: number }): Promise<Buffer> {
  const data = await readFile(file);
  const ps = data.readUInt16BE(16) === 1 ? 65536 : data.readUInt16BE(16);
  const page1 = patchPage1(data.subarray(0, ps), data.length / ps, old);
  return Buffer.concat([page1, data.subarray(ps)]);
}

/** Counter and cookie of a database file's page 1. */
export async function headerCounters(file: string): Promise<{ counter: number; cookie: number }> {
  const data = await readFile(file);
  return { counter: data.readUInt32BE(24), cookie: data.readUInt32BE(40) };
}

/** Names of LTX files (and anything else) in a directory, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export interface TransferServer {
  store: Store;
  dataDir: string;
  url: string;
  /** Use for requests: closed before the server, so no keep-alive socket delays its close. */
  agent: Agent;
  close(): Promise<void>;
}

/** A store and an API server serving only /import and /export, in this process (no FUSE mount). */
export async function startTransferServer(
  opts: Omit<TransferContext, 'store'> & { primary?: boolean; compress?: boolean } = {},
): Promise<TransferServer> {
  const dataDir = await tempDir('litefs-transfer-');
  const store = new Store({ dataDir, compress: opts.compress ?? true, logger: silentLogger });
  await store.open();
  store.setPrimary(opts.primary ?? true);
  const { primary: _p, compress: _c, ...ctx } = opts;
  const api = new ApiServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    nodeID: store.nodeIDString,
    routes: transferRoutesFor({ store, ...ctx }),
  });
  await api.listen();
  const agent = new Agent();
  return {
    store,
    dataDir,
    url: `http://127.0.0.1:${api.address().port}`,
    agent,
    close: async () => {
      await agent.close();
      await api.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
