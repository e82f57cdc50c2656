import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKSUM_FLAG,
  DatabaseChecksum,
  encodeLtxToBuffer,
  lockPgno,
  newHeader,
  verifyLtxFile,
  type Page,
  type Pos,
} from '../../src/ltx/index.js';
import { Store, importDatabase, isStoreError, receiveLtx, writeSnapshot, type DB } from '../../src/store/index.js';
import { listLtxFiles } from '../../src/store/ltx-files.js';
import { encodeFrameHeader, encodeWalHeader, frameOffset, parseWalHeader, type WalChecksum } from '../../src/store/wal-format.js';
import { realFS } from '../../src/store/sys.js';
import { silentLogger } from '../../src/internal/index.js';
import { buildHotJournal } from '../litefs/journal-writer.js';
import { FaultFS, type FaultErrno } from './fault-fs.js';

/*
 * Fault injection into every store operation that writes: a commit in each
 * journal mode and in WAL mode, a replica's apply of an incremental and of
 * a snapshot, a delete, a snapshot for a replica, and startup recovery.
 * Each operation runs once to count its disk-changing steps, then once per
 * step with that step failing (ENOSPC, then EIO). Whatever step fails, the
 * operation reports a clear error (or succeeds), and a restart with a
 * healthy disk finds the database, its position and its LTX history
 * consistent: at the position before the operation or after it — after it
 * whenever the operation reported success.
 */

const NAME = 'app.db';
const PS = 4096;
let work: string;
let pre: Buffer;
let post: Buffer;
let postWal: Buffer;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'litefs-faults-'));
  // Two states of one real SQLite database: `post` changes some of `pre`'s
  // pages and adds others.
  const file = path.join(work, 'image.db');
  const db = new Database(file);
  db.pragma('journal_mode = DELETE');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t VALUES (?, randomblob(?))');
  for (let i = 1; i <= 8; i++) ins.run(i, 900);
  pre = await readFile(file);
  db.exec('UPDATE t SET v = randomblob(950) WHERE id % 4 = 0');
  for (let i = 9; i <= 14; i++) ins.run(i, 1500);
  db.close();
  post = await readFile(file);
  // The same state in WAL mode (page 1's format bytes 18 and 19 are 2).
  postWal = Buffer.from(post);
  postWal[18] = 2;
  postWal[19] = 2;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function checksumOf(image: Buffer): bigint {
  const sum = new DatabaseChecksum(PS);
  const lock = lockPgno(PS);
  for (let p = 1; p <= image.length / PS; p++) if (p !== lock) sum.addPage(p, image.subarray((p - 1) * PS, p * PS));
  return sum.value;
}

function changedPages(from: Buffer | null, to: Buffer): number[] {
  const out: number[] = [];
  for (let p = 1; p <= to.length / PS; p++) {
    const a = from?.subarray((p - 1) * PS, p * PS);
    const b = to.subarray((p - 1) * PS, p * PS);
    if (a === undefined || a.length < PS || !a.equals(b)) out.push(p);
  }
  return out;
}

function pagesOf(image: Buffer, pgnos: number[]): Page[] {
  return pgnos.map((pgno) => ({ pgno, data: image.subarray((pgno - 1) * PS, pgno * PS) }));
}

function ltxBytes(from: { txid: bigint; image: Buffer | null }, to: Buffer): Uint8Array {
  const txid = from.txid + 1n;
  const snapshot = from.image === null;
  const header = newHeader({
    pageSize: PS,
    commit: to.length / PS,
    minTXID: snapshot ? 1n : txid,
    maxTXID: txid,
    timestamp: BigInt(Date.now()),
    preApplyChecksum: snapshot ? 0n : checksumOf(from.image!),
  });
  return encodeLtxToBuffer(header, pagesOf(to, changedPages(from.image, to)), checksumOf(to));
}

async function* chunks(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += 7000) yield bytes.subarray(off, off + 7000);
}

function openStore(dir: string, sys: FaultFS | null, primary: boolean): Store {
  const store = new Store({ dataDir: dir, compress: false, logger: silentLogger, ...(sys === null ? {} : { sys }) });
  store.setPrimary(primary);
  return store;
}

/** SQLite's steps for one rollback-journal transaction from `from` to `to`, through the store. */
async function journalCommit(db: DB, from: Buffer | null, to: Buffer, mode: 'delete' | 'truncate' | 'persist'): Promise<void> {
  await db.createJournal();
  const journal = buildHotJournal(from ?? Buffer.alloc(0), to.subarray(0, from?.length ?? 0), PS);
  await db.writeJournal(0, journal);
  for (const p of changedPages(from, to)) await db.writeDatabase((p - 1) * PS, to.subarray((p - 1) * PS, p * PS));
  if (mode === 'delete') await db.removeJournal();
  else if (mode === 'truncate') await db.truncateJournal(0);
  else await db.writeJournal(0, Buffer.alloc(28));
}

/** SQLite's steps for one WAL transaction (a new WAL): header, then each frame as header + page. */
async function walCommit(db: DB, from: Buffer, to: Buffer): Promise<void> {
  await db.createWal();
  const hdrBytes = encodeWalHeader({ bigEndianChecksums: false, pageSize: PS, checkpointSeq: 0, salt1: 0x1234, salt2: 0x5678 });
  const hdr = parseWalHeader(hdrBytes)!;
  await db.writeWal(0, hdrBytes);
  const pgnos = changedPages(from, to);
  let chain: WalChecksum = hdr.checksum;
  for (const [i, pgno] of pgnos.entries()) {
    const page = to.subarray((pgno - 1) * PS, pgno * PS);
    const frame = encodeFrameHeader(hdr, chain, pgno, i === pgnos.length - 1 ? to.length / PS : 0, page);
    chain = frame.checksum;
    const at = frameOffset(i, PS);
    await db.writeWal(at, frame.bytes);
    await db.writeWal(at + 24, page);
  }
}

interface Scenario {
  name: string;
  /** Builds the starting state in `dir` with a healthy disk. */
  setup(dir: string): Promise<void>;
  /** The operation, on a store using `sys`. */
  run(dir: string, sys: FaultFS): Promise<void>;
  /** Positions before and after (computed once the images exist). */
  before: () => Pos | null;
  after: () => Pos | null;
}

const posOf = (txid: bigint, image: Buffer): Pos => ({ txid, postApplyChecksum: checksumOf(image) });

function scenarios(): Scenario[] {
  const atPre = async (dir: string): Promise<void> => {
    const store = openStore(dir, null, true);
    await store.open();
    await journalCommit(await store.createDB(NAME), null, pre, 'delete');
    await store.close();
  };
  const commit = (mode: 'delete' | 'truncate' | 'persist'): Scenario => ({
    name: `commit (${mode} journal)`,
    setup: atPre,
    run: async (dir, sys) => {
      const store = openStore(dir, sys, true);
      try {
        await store.open();
        await journalCommit(store.db(NAME)!, pre, post, mode);
      } finally {
        await store.close().catch(() => {});
      }
    },
    before: () => posOf(1n, pre),
    after: () => posOf(2n, post),
  });
  const atPost = async (dir: string): Promise<void> => {
    await atPre(dir);
    const store = openStore(dir, null, true);
    await store.open();
    await journalCommit(store.db(NAME)!, pre, post, 'delete');
    await store.close();
  };
  const replicaAtPre = async (dir: string): Promise<void> => {
    const store = openStore(dir, null, false);
    await store.open();
    await receiveLtx(store, NAME, chunks(ltxBytes({ txid: 0n, image: null }, pre)), { logger: silentLogger });
    await store.close();
  };
  return [
    commit('delete'),
    commit('truncate'),
    commit('persist'),
    {
      name: 'commit (WAL)',
      setup: atPre,
      run: async (dir, sys) => {
        const store = openStore(dir, sys, true);
        try {
          await store.open();
          await walCommit(store.db(NAME)!, pre, postWal);
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(1n, pre),
      after: () => posOf(2n, postWal),
    },
    {
      name: 'replica apply of an incremental',
      setup: replicaAtPre,
      run: async (dir, sys) => {
        const store = openStore(dir, sys, false);
        try {
          await store.open();
          await receiveLtx(store, NAME, chunks(ltxBytes({ txid: 1n, image: pre }, post)), { logger: silentLogger });
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(1n, pre),
      after: () => posOf(2n, post),
    },
    {
      name: 'replica apply of a snapshot',
      setup: async () => {},
      run: async (dir, sys) => {
        const store = openStore(dir, sys, false);
        try {
          await store.open();
          await receiveLtx(store, NAME, chunks(ltxBytes({ txid: 0n, image: null }, post)), { logger: silentLogger });
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => null,
      after: () => posOf(1n, post),
    },
    {
      name: 'delete',
      setup: atPost,
      run: async (dir, sys) => {
        const store = openStore(dir, sys, true);
        try {
          await store.open();
          await store.db(NAME)!.drop();
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(2n, post),
      after: () => ({ txid: 3n, postApplyChecksum: CHECKSUM_FLAG }),
    },
    {
      name: 'snapshot for a replica',
      setup: atPost,
      run: async (dir, sys) => {
        const store = openStore(dir, sys, true);
        try {
          await store.open();
          const snap = await writeSnapshot(store.db(NAME)!, { sys, compress: false, nodeID: 1n });
          await realFS.unlink(snap.path);
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(2n, post),
      after: () => posOf(2n, post),
    },
    {
      name: 'import',
      setup: async (dir) => {
        await atPre(dir);
        await realFS.mkdirs(path.join(dir, 'upload'));
        const f = await realFS.open(path.join(dir, 'upload', 'post.db'), 'truncate');
        await f!.write(post, 0);
        await f!.close();
      },
      run: async (dir, sys) => {
        const store = openStore(dir, sys, true);
        try {
          await store.open();
          await importDatabase(store.db(NAME)!, path.join(dir, 'upload', 'post.db'), { nodeID: 1n, sys, isPrimary: () => true });
        } finally {
          await store.close().catch(() => {});
        }
      },
      // Import sets page 1's counters: the resulting checksum is the store's to say.
      before: () => posOf(1n, pre),
      after: () => null,
    },
    {
      name: 'retention',
      setup: atPost,
      run: async (dir, sys) => {
        const store = new Store({
          dataDir: dir,
          compress: false,
          logger: silentLogger,
          sys,
          retentionMs: 1,
          retentionMonitorIntervalMs: 0,
        });
        try {
          await store.open();
          await store.enforceRetention(Date.now() + 60_000);
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(2n, post),
      after: () => posOf(2n, post),
    },
    {
      name: 'startup recovery in WAL mode (recorded frames copied, unrecorded ones dropped)',
      setup: async (dir) => {
        await atPre(dir);
        const store = openStore(dir, null, true);
        await store.open();
        const db = store.db(NAME)!;
        await walCommit(db, pre, postWal);
        // A transaction whose commit frame never came: frames past the last recorded one.
        const extra = Buffer.from(postWal.subarray(0, PS));
        extra[100] = extra[100]! ^ 0xff;
        await db.writeWal(frameOffset(changedPages(pre, postWal).length, PS), Buffer.alloc(24));
        await store.close();
      },
      run: async (dir, sys) => {
        const store = openStore(dir, sys, true);
        try {
          await store.open();
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(2n, postWal),
      after: () => posOf(2n, postWal),
    },
    {
      name: 'startup recovery (a hot journal and a re-applied LTX file)',
      setup: async (dir) => {
        await atPost(dir);
        // The crash between the LTX file and the journal's finalization:
        // the database back at `post` with a hot journal that rolls it to `pre`.
        await realFS.mkdirs(path.join(dir, 'dbs', NAME));
        const journal = buildHotJournal(pre, post.subarray(0, pre.length), PS);
        const f = await realFS.open(path.join(dir, 'dbs', NAME, 'journal'), 'truncate');
        await f!.write(journal, 0);
        await f!.close();
      },
      run: async (dir, sys) => {
        const store = openStore(dir, sys, true);
        try {
          await store.open();
        } finally {
          await store.close().catch(() => {});
        }
      },
      before: () => posOf(2n, post),
      after: () => posOf(2n, post),
    },
  ];
}

/** A restart with a healthy disk: the database matches its position, the history verifies. */
async function expectConsistent(dir: string, s: Scenario, succeeded: boolean, context: string): Promise<void> {
  const store = openStore(dir, null, false);
  await store.open();
  try {
    const db = store.db(NAME);
    const pos = db?.pos ?? { txid: 0n, postApplyChecksum: 0n };
    const after = s.after();
    if (after === null && s.before() !== null) {
      // An operation whose result only the store knows (import): one transaction further, or none.
      const before = s.before()!;
      if (succeeded) expect(pos.txid, context).toBe(before.txid + 1n);
      else if (pos.txid !== before.txid) expect(pos.txid, context).toBe(before.txid + 1n);
      else expect(pos, context).toEqual(before);
    } else {
      const allowed = (succeeded ? [after] : [s.before(), after]).map((p) => p ?? { txid: 0n, postApplyChecksum: 0n });
      expect(allowed, `${context}: position ${pos.txid}`).toContainEqual(pos);
    }
    if (db === undefined || pos.txid === 0n) return;
    if (db.pageN > 0) expect(await db.currentChecksum(), `${context}: database checksum`).toBe(pos.postApplyChecksum);
    const files = await listLtxFiles(realFS, db.ltxDir);
    expect(files.at(-1)?.maxTXID, `${context}: newest LTX file`).toBe(pos.txid);
    let prev: bigint | null = null;
    for (const f of files) {
      const v = await verifyLtxFile(f.path, { strict: true });
      if (prev !== null) expect(v.header.preApplyChecksum, `${context}: chain at ${f.name}`).toBe(prev);
      prev = v.trailer.postApplyChecksum;
    }
  } finally {
    await store.close();
  }
}

describe('fault injection into every store operation that writes', () => {
  for (const s of scenarios()) {
    it(`${s.name}: any failing step leaves a consistent database and history`, async () => {
      const base = path.join(work, s.name.replace(/[^a-z]+/gi, '-'));
      await realFS.mkdirs(base);
      await s.setup(base);
      const counter = new FaultFS();
      const dry = path.join(work, `${path.basename(base)}-dry`);
      await cp(base, dry, { recursive: true });
      counter.failAt(0);
      await s.run(dry, counter);
      const steps = counter.steps;
      expect(steps, 'the operation changes the disk').toBeGreaterThan(0);
      await expectConsistent(dry, s, true, `${s.name}, no fault`);
      let failures = 0;
      {
        for (let k = 1; k <= steps; k++) {
          // A full disk and a failing one, alternately.
          const errno: FaultErrno = k % 2 === 1 ? 'ENOSPC' : 'EIO';
          const dir = path.join(work, `${path.basename(base)}-${errno}-${k}`);
          await cp(base, dir, { recursive: true });
          const sys = new FaultFS();
          sys.failAt(k, errno);
          let succeeded = true;
          try {
            await s.run(dir, sys);
          } catch (err) {
            succeeded = false;
            failures++;
            // A clear error: a coded store error, or the errno of the step.
            const code = (err as { code?: unknown }).code;
            expect(typeof code === 'string' && code.length > 0, `${s.name} step ${k}: ${String(err)}`).toBe(true);
            expect(String((err as Error).message).length).toBeGreaterThan(0);
            // A coded error of the store's (ERR_...), or the step's own errno.
            if (!isStoreError(err) && !/^ERR_[A-Z_]+$/.test(String(code))) expect(code).toBe(errno);
          }
          await expectConsistent(dir, s, succeeded, `${s.name}, ${errno} at step ${k} (${sys.failed ?? 'not reached'})`);
          await rm(dir, { recursive: true, force: true });
        }
      }
      expect(failures, 'faults were seen').toBeGreaterThan(0);
    });
  }

  it('a commit whose LTX file cannot be written fails, and the next one succeeds and follows on', async () => {
    const dir = path.join(work, 'retry');
    await realFS.mkdirs(dir);
    const seed = openStore(dir, null, true);
    await seed.open();
    await journalCommit(await seed.createDB(NAME), null, pre, 'delete');
    await seed.close();
    const sys = new FaultFS();
    const store = openStore(dir, sys, true);
    await store.open();
    const db = store.db(NAME)!;
    // Fail the temp LTX file's creation: the commit point fails.
    sys.failAt(0);
    await db.createJournal();
    await db.writeJournal(0, buildHotJournal(pre, post.subarray(0, pre.length), PS));
    for (const p of changedPages(pre, post)) await db.writeDatabase((p - 1) * PS, post.subarray((p - 1) * PS, p * PS));
    sys.failAt(1, 'ENOSPC');
    await expect(db.removeJournal()).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(db.pos.txid).toBe(1n);
    sys.healthy();
    // SQLite keeps its hot journal and the changed pages; once space is
    // back its next finalization commits them.
    await db.removeJournal();
    expect(db.pos).toEqual(posOf(2n, post));
    await store.close();
    await expectConsistent(
      dir,
      { ...scenarios()[0]!, before: () => posOf(2n, post), after: () => posOf(2n, post) },
      true,
      'after the retry',
    );
  });
});
