import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKSUM_FLAG, checksumDatabaseFile, encodeLtxToBuffer, newHeader, type Page } from '../../src/ltx/index.js';
import { LiteFSNode } from '../helpers/daemon.js';
import { poll } from '../helpers/cluster.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';
import { END, READY, chunked, heartbeatBytes, ltxFrameBytes, u32, u64, writeAll } from './wire.js';

/*
 * A hand-built malicious primary: an h2c server in the test process that
 * a real replica daemon (static lease pointing at it) follows. It sends one
 * valid snapshot, then on each reconnect one kind of bad stream: garbage,
 * truncated frames, corrupted or out-of-sequence LTX files, text. After
 * every one the replica must log the failure, reconnect with the same
 * position, and leave its database, LTX history and position untouched.
 */

const DB = 'db';
const FAKE_ID = 'FA4E000000000001';
const PAGE = 4096;

interface Conn {
  posMap: Map<string, { txid: bigint; checksum: bigint }>;
  go: () => void;
  done: Promise<void>;
}

let tmp: string;
let replica: LiteFSNode;
let server: http2.Http2Server;
const conns: Conn[] = [];
let script: ((stream: http2.ServerHttp2Stream) => Promise<void>)[] = [];
let endHonest = false;

/** Decodes the position map the replica sent (the documented layout). */
function parsePosMap(b: Buffer): Map<string, { txid: bigint; checksum: bigint }> {
  const out = new Map<string, { txid: bigint; checksum: bigint }>();
  const n = b.readUInt32BE(0);
  let o = 4;
  for (let i = 0; i < n; i++) {
    const len = b.readUInt32BE(o);
    const name = b.subarray(o + 4, o + 4 + len).toString('utf8');
    o += 4 + len;
    out.set(name, { txid: b.readBigUInt64BE(o), checksum: b.readBigUInt64BE(o + 8) });
    o += 16;
  }
  return out;
}

function pagesOf(file: Buffer): Page[] {
  const out: Page[] = [];
  for (let i = 0; i * PAGE < file.length; i++) out.push({ pgno: i + 1, data: file.subarray(i * PAGE, (i + 1) * PAGE) });
  return out;
}

interface Fixture {
  c1: bigint;
  c2: bigint;
  c3: bigint;
  snapshot1: Buffer;
  incr2: Buffer;
  incr2Pages: Page[];
  n2: number;
  incr3: Buffer;
}
let fx: Fixture;

async function buildFixture(): Promise<Fixture> {
  const v1 = path.join(tmp, 'v1.db');
  const v2 = path.join(tmp, 'v2.db');
  const v3 = path.join(tmp, 'v3.db');
  let r = await runSqlite3(
    v1,
    "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES ('one'), (randomblob(9000));",
  );
  expect(r.code, r.stderr).toBe(0);
  await copyFile(v1, v2);
  r = await runSqlite3(v2, "INSERT INTO t VALUES ('two'), (randomblob(5000));");
  expect(r.code, r.stderr).toBe(0);
  await copyFile(v2, v3);
  r = await runSqlite3(v3, "INSERT INTO t VALUES ('three'), (randomblob(400000));");
  expect(r.code, r.stderr).toBe(0);
  const b1 = await readFile(v1);
  const b2 = await readFile(v2);
  const b3 = await readFile(v3);
  const c3 = await checksumDatabaseFile(v3);
  const p3 = pagesOf(b3);
  const c1 = await checksumDatabaseFile(v1);
  const c2 = await checksumDatabaseFile(v2);
  const p1 = pagesOf(b1);
  const p2 = pagesOf(b2);
  const changed = p2.filter((p, i) => i >= p1.length || !Buffer.from(p.data).equals(Buffer.from(p1[i]!.data)));
  const ts = BigInt(Date.now());
  const snapshot1 = Buffer.from(
    encodeLtxToBuffer(newHeader({ pageSize: PAGE, commit: p1.length, minTXID: 1n, maxTXID: 1n, timestamp: ts, nodeID: 0xfa4en }), p1, c1),
  );
  const h2 = newHeader({
    pageSize: PAGE,
    commit: p2.length,
    minTXID: 2n,
    maxTXID: 2n,
    timestamp: ts,
    preApplyChecksum: c1,
    nodeID: 0xfa4en,
  });
  const incr2 = Buffer.from(encodeLtxToBuffer(h2, changed, c2));
  const changed3 = p3.filter((p, i) => i >= p2.length || !Buffer.from(p.data).equals(Buffer.from(p2[i]!.data)));
  const h3 = newHeader({
    pageSize: PAGE,
    commit: p3.length,
    minTXID: 3n,
    maxTXID: 3n,
    timestamp: ts,
    preApplyChecksum: c2,
    nodeID: 0xfa4en,
  });
  const incr3 = Buffer.from(encodeLtxToBuffer(h3, changed3, c3));
  return { c1, c2, c3, snapshot1, incr2, incr2Pages: changed, n2: p2.length, incr3 };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'litefs-malicious-'));
  fx = await buildFixture();
  server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':path'] !== '/stream' || headers[':method'] !== 'POST') {
      stream.respond({ ':status': 404 });
      stream.end();
      return;
    }
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.once('end', () => {
      let go!: () => void;
      const gate = new Promise<void>((resolve) => (go = resolve));
      const k = conns.length;
      const done = (async () => {
        await gate;
        // The replica may be gone already (stopped, or it gave up on us).
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'litefs-id': FAKE_ID });
        const step = script[k];
        if (step === undefined) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        await step(stream);
      })().catch(() => undefined);
      conns.push({ posMap: parsePosMap(Buffer.concat(parts)), go, done });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  replica = await LiteFSNode.create({
    prefix: 'litefs-victim-',
    args: ['-debug'],
    configText: ({ dataDir, mountDir }) =>
      [
        'data:',
        `  dir: ${JSON.stringify(dataDir)}`,
        'fuse:',
        `  dir: ${JSON.stringify(mountDir)}`,
        'http:',
        '  addr: "127.0.0.1:0"',
        'lease:',
        '  type: static',
        '  candidate: false',
        '  hostname: "fake"',
        `  advertise-url: ${JSON.stringify(url)}`,
        '  reconnect-delay: "100ms"',
        '',
      ].join('\n'),
  });
});

afterAll(async () => {
  await replica?.destroy();
  for (const c of conns) c.go();
  server?.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

async function connection(k: number): Promise<Conn> {
  return poll(async () => conns[k], `connection ${k} from the replica`, 20_000, 20);
}

/** The replica's database bytes, LTX directory and position, as a comparable string. */
async function diskState(): Promise<string> {
  const db = await readFile(replica.databaseFile(DB));
  const ltx = (await readdir(replica.ltxDir(DB))).sort();
  return `${createHash('sha256').update(db).digest('hex')} ${ltx.join(',')}`;
}

function failures(): string[] {
  return replica
    .logLines()
    .filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('replication stream failed'))
    .map((l) => String(l['msg']));
}

async function rows(): Promise<string> {
  const r = await runSqlite3(replica.path(DB), "SELECT group_concat(x, ',') FROM t WHERE typeof(x) = 'text'; PRAGMA integrity_check;", {
    busyTimeoutMs: 5000,
  });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

function corrupt(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x5a;
  return c;
}

describe('a replica following a malicious primary', () => {
  it('rejects garbage, truncated, corrupted and out-of-sequence frames, reconnects, and keeps its database untouched', async () => {
    const send =
      (...bufs: Buffer[]) =>
      async (s: http2.ServerHttp2Stream) => {
        for (const b of bufs) await writeAll(s, b);
        s.end();
      };
    const frame = (ltx: Buffer) => ltxFrameBytes(DB, ltx);
    const wrongPost = Buffer.from(
      encodeLtxToBuffer(
        newHeader({ pageSize: PAGE, commit: fx.n2, minTXID: 2n, maxTXID: 2n, timestamp: 1n, preApplyChecksum: fx.c1, nodeID: 0xfa4en }),
        fx.incr2Pages,
        (fx.c2 ^ 0x10n) | CHECKSUM_FLAG,
      ),
    );
    const outOfSequence = Buffer.from(
      encodeLtxToBuffer(
        newHeader({ pageSize: PAGE, commit: fx.n2, minTXID: 3n, maxTXID: 3n, timestamp: 1n, preApplyChecksum: fx.c2, nodeID: 0xfa4en }),
        fx.incr2Pages,
        fx.c2,
      ),
    );
    const wrongPre = Buffer.from(
      encodeLtxToBuffer(
        newHeader({
          pageSize: PAGE,
          commit: fx.n2,
          minTXID: 2n,
          maxTXID: 2n,
          timestamp: 1n,
          preApplyChecksum: fx.c1 ^ 0x2n,
          nodeID: 0xfa4en,
        }),
        fx.incr2Pages,
        fx.c2,
      ),
    );
    // A chunk header promising 65535 bytes, then 1000 and the end of the stream.
    const cutChunk = Buffer.concat([
      u32(1),
      u64(0n),
      u32(DB.length),
      Buffer.from(DB),
      Buffer.from([0xff, 0xff]),
      fx.incr2.subarray(0, 1000),
    ]);
    const bad: { what: string; step: (s: http2.ServerHttp2Stream) => Promise<void>; error: RegExp }[] = [
      { what: 'garbage', step: send(Buffer.from('deadbeef', 'hex'), Buffer.alloc(4096, 0xa5)), error: /unknown frame type/ },
      { what: 'an unknown frame type', step: send(READY, u32(99)), error: /unknown frame type 99/ },
      { what: 'text after the 200', step: send(Buffer.from('internal error: boom\n')), error: /text/ },
      { what: 'a frame cut inside a chunk', step: send(cutChunk), error: /ended|end of|short|truncat|EOF/i },
      { what: 'an LTX file cut in half', step: send(frame(fx.incr2.subarray(0, Math.floor(fx.incr2.length / 2)))), error: /.+/ },
      { what: 'a flipped byte in a page', step: send(frame(corrupt(fx.incr2, 100 + 4 + 2000))), error: /checksum/i },
      { what: 'a flipped byte in the header', step: send(frame(corrupt(fx.incr2, 13))), error: /.+/ },
      { what: 'a flipped byte in the trailer', step: send(frame(corrupt(fx.incr2, fx.incr2.length - 3))), error: /checksum/i },
      {
        what: 'a declared size that lies',
        step: send(ltxFrameBytes(DB, fx.incr2, { size: BigInt(fx.incr2.length + 7) })),
        error: /size|declared/i,
      },
      { what: 'a TXID that skips one', step: send(frame(outOfSequence)), error: /does not follow/ },
      { what: 'a pre-apply checksum from another history', step: send(frame(wrongPre)), error: /does not follow/ },
      { what: 'a database name with a slash', step: send(ltxFrameBytes('../evil', fx.incr2)), error: /name/ },
      { what: 'a name length of 4 GiB', step: send(Buffer.concat([u32(1), u64(0n), u32(0xffffffff)])), error: /name length/ },
    ];

    script = [
      // 0: the one honest stream.
      send(frame(fx.snapshot1), READY, heartbeatBytes()),
      ...bad.map((b) => b.step),
      // A self-consistent file whose post-apply checksum is a lie.
      send(frame(wrongPost)),
      // Finally honest again: it asked for a snapshot, so a snapshot and TXID 2.
      async (s) => {
        await writeAll(s, frame(fx.snapshot1));
        await writeAll(s, frame(fx.incr2));
        await writeAll(s, READY);
        for (let i = 0; i < 600 && !s.destroyed && !endHonest; i++) {
          await writeAll(s, heartbeatBytes());
          await new Promise((r) => setTimeout(r, 500));
        }
        await writeAll(s, END);
        s.end();
      },
    ];

    await replica.start();
    const c0 = await connection(0);
    expect(c0.posMap.size).toBe(0);
    c0.go();
    await c0.done;
    const c1 = await connection(1);
    expect(c1.posMap.get(DB)).toEqual({ txid: 1n, checksum: fx.c1 });
    const baseline = await diskState();
    expect(baseline).toMatch(/ 0000000000000001-0000000000000001\.ltx$/);
    expect(await rows()).toBe('one\nok');

    let seen = failures().length;
    for (const [i, b] of bad.entries()) {
      const c = conns[i + 1]!;
      c.go();
      await c.done;
      const next = await connection(i + 2);
      const f = failures();
      expect(f.length, `a logged failure for ${b.what}`).toBeGreaterThan(seen);
      expect(f.slice(seen).join('\n'), b.what).toMatch(b.error);
      seen = f.length;
      expect(next.posMap.get(DB), `position after ${b.what}`).toEqual({ txid: 1n, checksum: fx.c1 });
      expect(await diskState(), `database and LTX files after ${b.what}`).toBe(baseline);
    }
    expect(await rows()).toBe('one\nok');
    expect((await readdir(path.join(replica.dataDir, 'dbs'))).sort()).toEqual([DB]);

    // The lying post-apply checksum: refused before a page was written,
    // and the replica asks for a snapshot.
    const liar = conns[bad.length + 1]!;
    liar.go();
    await liar.done;
    const last = await connection(bad.length + 2);
    expect(failures().slice(seen).join('\n')).toMatch(/post-apply checksum/);
    expect(last.posMap.size).toBe(0);
    expect(await diskState()).toBe(baseline);

    last.go();
    await poll(
      async () => ((await readFile(replica.path(`${DB}-pos`), 'utf8')).startsWith('0000000000000002/') ? true : undefined),
      'TXID 2 on the replica',
    );
    expect(await rows()).toBe('one,two\nok');
    expect(await checksumDatabaseFile(replica.databaseFile(DB))).toBe(fx.c2);
    expect((await readFile(replica.path('.primary'), 'utf8')).trim()).toBe('fake');
    expect(replica.exit).toBeNull();
  });

  it('keeps receiving an LTX file that trickles in for longer than the silent-primary timeout (10 s) without heartbeats', async () => {
    const k = conns.length;
    const frame3 = Buffer.concat([u32(1), u64(0n), u32(DB.length), Buffer.from(DB), chunked(fx.incr3, 4096)]);
    const PIECES = 26;
    script[k] = async (s) => {
      // 26 slices, one every 500 ms: 12.5 s with no heartbeat, but never
      // more than half a second without a byte.
      for (let i = 0; i < PIECES; i++) {
        const from = Math.floor((frame3.length * i) / PIECES);
        const to = Math.floor((frame3.length * (i + 1)) / PIECES);
        await writeAll(s, frame3.subarray(from, to));
        if (i < PIECES - 1) await new Promise((r) => setTimeout(r, 500));
      }
      await writeAll(s, READY);
      await writeAll(s, heartbeatBytes());
      for (let i = 0; i < 120 && !s.destroyed; i++) {
        await writeAll(s, heartbeatBytes());
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    const seen = failures().length;
    endHonest = true;
    const c = await connection(k);
    expect(c.posMap.get(DB)).toEqual({ txid: 2n, checksum: fx.c2 });
    c.go();
    await poll(
      async () => ((await readFile(replica.path(`${DB}-pos`), 'utf8')).startsWith('0000000000000003/') ? true : undefined),
      'TXID 3 on the replica',
      30_000,
      100,
    );
    expect(failures().slice(seen)).toEqual([]);
    expect(conns.length).toBe(k + 1);
    expect(await rows()).toBe('one,two,three\nok');
    expect(await checksumDatabaseFile(replica.databaseFile(DB))).toBe(fx.c3);
  }, 60_000);
});
