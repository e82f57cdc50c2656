import http2 from 'node:http2';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { LtxDecoder, checksumDatabaseFile, formatPos, hex64, verifyLtxFile } from '../../src/ltx/index.js';
import type { DBChange } from '../../src/store/db.js';
import { checksumOf, expectedImage, listDir, makeDatabase, startTransferServer, tempDir, type TransferServer } from './helpers.js';
import { LockError, noClientLocks } from '../../src/store/index.js';

/*
 * POST /import and GET /export against a real store and API server in this
 * process (no FUSE mount): every answer, the LTX file an import writes, the
 * database it leaves, and what a refused import leaves untouched.
 */

let work: string;
let small: string; // 40 rows, 4 KiB pages
let other: string; // another schema, 4 KiB pages
let walFile: string;
let tiny: string; // 1 KiB pages

beforeAll(async () => {
  work = await tempDir('litefs-transfer-src-');
  small = path.join(work, 'small.db');
  other = path.join(work, 'other.db');
  walFile = path.join(work, 'wal.db');
  tiny = path.join(work, 'tiny.db');
  await makeDatabase(small, { rows: 40, blob: 300 });
  await makeDatabase(other, { table: 'u', column: 'w', rows: 90, blob: 500 });
  await makeDatabase(walFile, { rows: 10, blob: 100, wal: true });
  await makeDatabase(tiny, { rows: 10, blob: 100, pageSize: 1024 });
});

afterAll(async () => {
  const { rm } = await import('node:fs/promises');
  await rm(work, { recursive: true, force: true });
});

const servers: TransferServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function server(opts: Parameters<typeof startTransferServer>[0] = {}): Promise<TransferServer> {
  const s = await startTransferServer(opts);
  servers.push(s);
  return s;
}

async function post(
  s: TransferServer,
  name: string | null,
  body: Buffer | Readable,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const url = new URL('/import', s.url);
  if (name !== null) url.searchParams.set('name', name);
  const len = Buffer.isBuffer(body) ? { 'content-length': String(body.length) } : {};
  const r = await request(url, {
    dispatcher: s.agent,
    method: 'POST',
    body,
    headers: { ...len, ...headers },
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  return { status: r.statusCode, text: await r.body.text() };
}

function ltxDir(s: TransferServer, db: string): string {
  return path.join(s.dataDir, 'dbs', db, 'ltx');
}

function dbFile(s: TransferServer, db: string): string {
  return path.join(s.dataDir, 'dbs', db, 'database');
}

describe('POST /import', () => {
  it('creates a new database as one snapshot LTX file at TXID 1, page 1 patched, nothing left behind', async () => {
    const s = await server();
    const changes: DBChange[] = [];
    s.store.on('change', (c) => changes.push(c));
    const upload = await readFile(small);
    const r = await post(s, 'app.db', upload);
    expect(r.status).toBe(200);
    const want = await expectedImage(small);
    const sum = checksumOf(want, 4096);
    expect(JSON.parse(r.text)).toEqual({ TXID: '0000000000000001', PostApplyChecksum: hex64(sum) });

    expect(await listDir(ltxDir(s, 'app.db'))).toEqual(['0000000000000001-0000000000000001.ltx']);
    const v = await verifyLtxFile(path.join(ltxDir(s, 'app.db'), '0000000000000001-0000000000000001.ltx'), { strict: true });
    expect(v.header.minTXID).toBe(1n);
    expect(v.header.preApplyChecksum).toBe(0n);
    expect(v.header.commit).toBe(upload.length / 4096);
    expect(v.pageCount).toBe(upload.length / 4096);
    expect(v.header.flags).toBe(1);
    expect(v.trailer.postApplyChecksum).toBe(sum);

    const stored = await readFile(dbFile(s, 'app.db'));
    expect(stored.equals(want)).toBe(true);
    // Only the documented bytes of page 1 differ from the upload.
    const differing = [...Array(100).keys()].filter((i) => stored[i] !== upload[i]);
    expect(differing.every((i) => (i >= 24 && i < 28) || (i >= 40 && i < 44) || (i >= 92 && i < 96))).toBe(true);
    expect(stored.readUInt32BE(24)).toBe(upload.readUInt32BE(24) + 1);
    expect(stored.readUInt32BE(92)).toBe(stored.readUInt32BE(24));
    expect(stored.readUInt32BE(40)).toBe(upload.readUInt32BE(40) + 1);
    expect(stored.subarray(4096).equals(upload.subarray(4096))).toBe(true);

    const db = s.store.db('app.db')!;
    expect(formatPos(db.pos)).toBe(`0000000000000001/${hex64(sum)}`);
    expect(await db.currentChecksum()).toBe(sum);
    expect(changes.map((c) => [c.kind, c.pos.txid, c.commit])).toEqual([['commit', 1n, upload.length / 4096]]);
  });

  it('replaces an existing database as TXID pos+1 holding every page, pre-apply = the old checksum', async () => {
    const s = await server({ compress: false });
    expect((await post(s, 'app.db', await readFile(small))).status).toBe(200);
    const before = s.store.db('app.db')!.pos;
    const old = {
      counter: (await readFile(dbFile(s, 'app.db'))).readUInt32BE(24),
      cookie: (await readFile(dbFile(s, 'app.db'))).readUInt32BE(40),
    };
    const r = await post(s, 'app.db', await readFile(other));
    expect(r.status).toBe(200);
    const want = await expectedImage(other, old);
    const sum = checksumOf(want, 4096);
    expect(JSON.parse(r.text)).toEqual({ TXID: '0000000000000002', PostApplyChecksum: hex64(sum) });
    expect(await listDir(ltxDir(s, 'app.db'))).toEqual(['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);

    const dec = new LtxDecoder(path.join(ltxDir(s, 'app.db'), '0000000000000002-0000000000000002.ltx'), { strict: true });
    const h = await dec.decodeHeader();
    const pgnos: number[] = [];
    for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) pgnos.push(p.pgno);
    const t = await dec.close();
    expect(h.flags).toBe(0);
    expect(h.minTXID).toBe(2n);
    expect(h.preApplyChecksum).toBe(before.postApplyChecksum);
    expect(h.commit).toBe(want.length / 4096);
    expect(pgnos).toEqual([...Array(want.length / 4096).keys()].map((i) => i + 1));
    expect(t.postApplyChecksum).toBe(sum);
    const stored = await readFile(dbFile(s, 'app.db'));
    expect(stored.equals(want)).toBe(true);
    expect(await checksumDatabaseFile(dbFile(s, 'app.db'))).toBe(sum);
  });

  it('converts a WAL-mode upload to rollback-journal mode (bytes 18/19 = 1)', async () => {
    const s = await server();
    const upload = await readFile(walFile);
    expect([upload[18], upload[19]]).toEqual([2, 2]);
    const r = await post(s, 'w.db', upload);
    expect(r.status).toBe(200);
    const stored = await readFile(dbFile(s, 'w.db'));
    expect([stored[18], stored[19]]).toEqual([1, 1]);
    expect(stored.equals(await expectedImage(walFile))).toBe(true);
  });

  it('refuses what is not an acceptable SQLite file with 400 and leaves the database and its history untouched', async () => {
    const s = await server();
    expect((await post(s, 'app.db', await readFile(small))).status).toBe(200);
    const pos = s.store.db('app.db')!.pos;
    const before = await readFile(dbFile(s, 'app.db'));
    const good = await readFile(small);
    const withByte = (i: number, v: number): Buffer => {
      const b = Buffer.from(good);
      b[i] = v;
      return b;
    };
    const badCount = Buffer.from(good);
    badCount.writeUInt32BE(good.length / 4096 + 1, 28);
    const cases: [Buffer, string][] = [
      [Buffer.from('x'.repeat(5000)), 'not a SQLite database: the file does not start with "SQLite format 3\\0"'],
      [Buffer.alloc(0), 'empty upload: expected a SQLite database file'],
      [good.subarray(0, 50), 'not a SQLite database: 50 bytes is shorter than the 100-byte SQLite header'],
      [withByte(16, 3), 'invalid SQLite header: page size field 768 is not a power of two in 512..65536'],
      [withByte(18, 3), 'invalid SQLite header: file format versions (bytes 18/19) are 3/1; expected 1/1 (rollback journal) or 2/2 (WAL)'],
      [withByte(21, 63), 'invalid SQLite header: payload fractions (bytes 21-23) are 63/32/32; SQLite requires 64/32/32'],
      [good.subarray(0, good.length - 100), `file size ${good.length - 100} bytes is not a multiple of its page size 4096`],
      [badCount, `the SQLite header says ${good.length / 4096 + 1} pages but the file holds ${good.length / 4096} pages of 4096 bytes`],
    ];
    for (const [body, message] of cases) {
      const r = await post(s, 'app.db', body);
      expect({ status: r.status, text: r.text }).toEqual({ status: 400, text: `${message}\n` });
    }
    expect(s.store.db('app.db')!.pos).toEqual(pos);
    expect((await readFile(dbFile(s, 'app.db'))).equals(before)).toBe(true);
    expect(await listDir(ltxDir(s, 'app.db'))).toEqual(['0000000000000001-0000000000000001.ltx']);
  });

  it('answers 503 on a replica, even to a large upload it does not read', async () => {
    const s = await server({ primary: false, primaryHint: () => 'node0 at http://127.0.0.1:1' });
    const big = Buffer.alloc(24 << 20, 7);
    const r = await post(s, 'app.db', big);
    expect(r).toEqual({ status: 503, text: 'this node is not the primary; import on the primary (node0 at http://127.0.0.1:1)\n' });
    expect(s.store.db('app.db')).toBeUndefined();
  });

  it('answers 413 past the size limit, declared up front or discovered while streaming', async () => {
    const s = await server({ sizeLimit: () => 16 * 1024 });
    const upload = await readFile(other);
    expect(upload.length).toBeGreaterThan(16 * 1024);
    const declared = await post(s, 'app.db', upload);
    expect(declared.status).toBe(413);
    expect(declared.text).toMatch(new RegExp(`^an upload of ${upload.length} bytes exceeds the import limit of 16384 bytes`));
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < upload.length; i += 10_000) yield upload.subarray(i, i + 10_000);
    }
    const streamed = await post(s, 'app.db', Readable.from(chunks()));
    expect(streamed.status).toBe(413);
    expect(streamed.text).toMatch(/^an upload of \d+ bytes exceeds the import limit of 16384 bytes/);
    // A database the refused import would have created leaves nothing behind.
    await expect(listDir(path.dirname(ltxDir(s, 'app.db')))).rejects.toThrow(/ENOENT/);
    expect(s.store.db('app.db')).toBeUndefined();
  });

  it('names http.max-import-size in the 413 when that cap is what an upload exceeds', async () => {
    const s = await server({ sizeLimit: () => 8 * 1024, configuredLimit: 8 * 1024 });
    const upload = await readFile(other);
    const r = await post(s, 'app.db', upload);
    expect(r.status).toBe(413);
    expect(r.text.trim()).toBe(`an upload of ${upload.length} bytes exceeds http.max-import-size (8192 bytes)`);
    await expect(listDir(path.dirname(ltxDir(s, 'app.db')))).rejects.toThrow(/ENOENT/);
  });

  it('answers 409 when the page size differs from the existing database', async () => {
    const s = await server();
    expect((await post(s, 'app.db', await readFile(small))).status).toBe(200);
    const r = await post(s, 'app.db', await readFile(tiny));
    expect(r).toEqual({
      status: 409,
      text: 'app.db: the upload has 1024-byte pages but the database has 4096-byte pages; delete the database first to change its page size\n',
    });
    expect(s.store.db('app.db')!.pos.txid).toBe(1n);
  });

  it('waits for SQLite readers and answers 503 when they outlast the lock timeout', async () => {
    const s = await server({ lockTimeoutMs: 300 });
    expect((await post(s, 'app.db', await readFile(small))).status).toBe(200);
    const db = s.store.db('app.db')!;
    const pos = db.pos;
    // A SQLite reader in another process, as the store sees it through the
    // mount: its SHARED lock keeps the store's exclusive lock waiting.
    let readerHolds = true;
    s.store.clientLocks = {
      ...noClientLocks,
      exclusive: async (name, _kind, signal) => {
        while (readerHolds) {
          if (signal.aborted) throw new LockError('ERR_LOCK_TIMEOUT', `${name}: SQLite clients held the SHARED lock; gave up waiting`);
          await new Promise((r) => setTimeout(r, 10));
        }
        return async () => {};
      },
    };
    try {
      const r = await post(s, 'app.db', await readFile(other));
      expect(r.status).toBe(503);
      expect(r.text).toMatch(/^app\.db: SQLite clients kept the database busy: app\.db: SQLite clients held the SHARED lock/);
    } finally {
      readerHolds = false;
    }
    expect(db.pos).toEqual(pos);
    expect(await listDir(ltxDir(s, 'app.db'))).toEqual(['0000000000000001-0000000000000001.ltx']);
    // With the reader gone the same import goes through.
    expect((await post(s, 'app.db', await readFile(other))).status).toBe(200);
  });

  it('validates the database name', async () => {
    const s = await server();
    const body = await readFile(small);
    expect(await post(s, null, body)).toEqual({ status: 400, text: 'missing ?name= (the database name)\n' });
    expect(await post(s, '.hidden', body)).toEqual({
      status: 400,
      text: 'invalid database name ".hidden": names starting with "." are reserved\n',
    });
    expect(await post(s, 'app.db-wal', body)).toEqual({
      status: 400,
      text: 'invalid database name "app.db-wal": it ends in the reserved suffix -wal (-journal, -wal, -shm, -pos, -lock)\n',
    });
  });
});

describe('GET /export', () => {
  it('answers 404 for a database that does not exist', async () => {
    const s = await server();
    const r = await request(`${s.url}/export?name=nope.db`, { dispatcher: s.agent });
    expect(r.statusCode).toBe(404);
    expect(await r.body.text()).toBe('database "nope.db" not found\n');
  });

  it('streams the committed database with Content-Length and Litefs-Pos, over HTTP/1.1 and h2c', async () => {
    const s = await server();
    expect((await post(s, 'app.db', await readFile(other))).status).toBe(200);
    const db = s.store.db('app.db')!;
    const want = await readFile(dbFile(s, 'app.db'));

    const r = await request(`${s.url}/export?name=app.db`, { dispatcher: s.agent });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe(String(want.length));
    expect(r.headers['litefs-pos']).toBe(formatPos(db.pos));
    const got = Buffer.from(await r.body.arrayBuffer());
    expect(got.equals(want)).toBe(true);

    const session = http2.connect(s.url);
    try {
      const h2 = await new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = session.request({ ':path': '/export?name=app.db' });
        const chunks: Buffer[] = [];
        let headers: http2.IncomingHttpHeaders = {};
        req.on('response', (h) => (headers = h));
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
        req.on('error', reject);
        req.end();
      });
      expect(h2.headers[':status']).toBe(200);
      expect(h2.headers['litefs-pos']).toBe(formatPos(db.pos));
      expect(h2.body.equals(want)).toBe(true);
    } finally {
      session.close();
    }
    // The temporary snapshot goes once the server has finished the response
    // (the client can have every byte a moment before that).
    const clean = ['0000000000000001-0000000000000001.ltx'];
    for (let i = 0; i < 100 && JSON.stringify(await listDir(ltxDir(s, 'app.db'))) !== JSON.stringify(clean); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await listDir(ltxDir(s, 'app.db'))).toEqual(clean);
  });

  it('exports what a file written outside the API would read back identically', async () => {
    const s = await server();
    expect((await post(s, 'x.db', await readFile(small))).status).toBe(200);
    const r = await request(`${s.url}/export?name=x.db`, { dispatcher: s.agent });
    const out = path.join(work, 'x-export.db');
    await writeFile(out, Buffer.from(await r.body.arrayBuffer()));
    expect(await checksumDatabaseFile(out)).toBe(s.store.db('x.db')!.pos.postApplyChecksum);
  });
});
