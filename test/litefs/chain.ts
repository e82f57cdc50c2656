import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  checksumDatabaseFile,
  formatChecksum,
  formatPos,
  parseLtxFilename,
  verifyLtxFile,
  type VerifyResult,
} from '../../src/ltx/index.js';
import { CLI_PATH, type LiteFSNode } from '../helpers/daemon.js';
import { runProcess, type ChildResult } from '../helpers/processes.js';

/** One verified LTX file of a database's history. */
export interface ChainEntry extends VerifyResult {
  name: string;
  path: string;
}

/** Runs the compiled CLI (`node dist/cli/main.js ...args`). */
export function runCli(args: readonly string[], timeoutMs = 120_000): Promise<ChildResult> {
  return runProcess(process.execPath, [CLI_PATH, ...args], { timeoutMs });
}

/** `litefs ltx checksum FILE`, parsed. */
export async function cliChecksum(file: string): Promise<bigint> {
  const r = await runCli(['ltx', 'checksum', file]);
  if (r.code !== 0) throw new Error(`ltx checksum ${file} failed (${r.code}): ${r.stderr}`);
  const m = /^([0-9a-f]{16})\n$/.exec(r.stdout);
  if (m === null) throw new Error(`ltx checksum printed ${JSON.stringify(r.stdout)}`);
  return BigInt(`0x${m[1]}`);
}

/**
 * Every LTX file in `dir` (sorted by name), each fully verified. Ignores
 * *.tmp. Files are immutable once renamed into place, so a `cache` of
 * earlier results (by path) spares long histories from re-decoding.
 */
export async function readChain(dir: string, cache?: Map<string, ChainEntry>): Promise<ChainEntry[]> {
  const names = (await readdir(dir)).filter((n) => parseLtxFilename(n) !== null).sort();
  const out: ChainEntry[] = [];
  for (const name of names) {
    const p = path.join(dir, name);
    const cached = cache?.get(p);
    if (cached !== undefined) {
      out.push(cached);
      continue;
    }
    let v: VerifyResult;
    try {
      v = await verifyLtxFile(p, { strict: true });
    } catch (err) {
      throw new Error(`${p} does not verify: ${String(err)}`);
    }
    const parsed = parseLtxFilename(name)!;
    if (parsed.minTXID !== v.header.minTXID || parsed.maxTXID !== v.header.maxTXID) {
      throw new Error(`${p}: header TXIDs ${v.header.minTXID}-${v.header.maxTXID} differ from the name`);
    }
    const entry = { ...v, name, path: p };
    cache?.set(p, entry);
    out.push(entry);
  }
  return out;
}

/**
 * Problems with a chain: it must start with a snapshot-shaped TXID 1
 * (unless `fromTXID` says retention may have removed the start), and each
 * file must follow on from the previous one (MinTXID = previous MaxTXID + 1,
 * PreApply = previous PostApply). Returns [] when the chain is sound.
 */
export function chainProblems(chain: readonly ChainEntry[], opts: { allowTrimmedStart?: boolean } = {}): string[] {
  const problems: string[] = [];
  const first = chain[0];
  if (first === undefined) return ['no LTX files'];
  if (!opts.allowTrimmedStart) {
    if (first.header.minTXID !== 1n) problems.push(`first file ${first.name} does not start at TXID 1`);
    if (first.header.preApplyChecksum !== 0n) problems.push(`first file ${first.name} has a pre-apply checksum`);
    // Snapshot-shaped: every page 1..commit except the lock page.
    const lock = Math.floor(0x40000000 / first.header.pageSize) + 1;
    const expected = first.header.commit - (lock <= first.header.commit ? 1 : 0);
    if (first.pageCount !== expected)
      problems.push(`first file ${first.name} has ${first.pageCount} pages, commit is ${first.header.commit}`);
  }
  for (let i = 1; i < chain.length; i++) {
    const prev = chain[i - 1]!;
    const cur = chain[i]!;
    if (cur.header.minTXID !== prev.header.maxTXID + 1n) problems.push(`${cur.name} does not follow ${prev.name}`);
    if (cur.header.preApplyChecksum !== prev.trailer.postApplyChecksum) {
      problems.push(
        `${cur.name} pre-apply ${formatChecksum(cur.header.preApplyChecksum)} != ${prev.name} post-apply ${formatChecksum(prev.trailer.postApplyChecksum)}`,
      );
    }
  }
  return problems;
}

export interface ConsistencyReport {
  chain: ChainEntry[];
  txid: bigint;
  postApply: bigint;
  fileChecksum: bigint;
  pos: string;
}

/**
 * The checks made after every transaction: the chain is contiguous and
 * every file verifies, `litefs ltx checksum` of the underlying database
 * equals the newest post-apply checksum, and `<db>-pos` shows that position.
 * Throws with every problem found.
 */
export async function checkConsistency(
  node: LiteFSNode,
  db: string,
  opts: {
    allowTrimmedStart?: boolean;
    readPos?: boolean;
    cache?: Map<string, ChainEntry>;
    /** Checksum the database in this process instead of running `litefs ltx checksum` (long loops). */
    inProcess?: boolean;
  } = {},
): Promise<ConsistencyReport> {
  const chain = await readChain(node.ltxDir(db), opts.cache);
  const problems = chainProblems(chain, opts);
  const last = chain[chain.length - 1];
  const image = await withWalFrames(node, db, last);
  let fileChecksum: bigint;
  try {
    fileChecksum = opts.inProcess === true ? await checksumDatabaseFile(image.path) : await cliChecksum(image.path);
  } finally {
    await image.cleanup();
  }
  let pos = '';
  if (last !== undefined) {
    if (fileChecksum !== last.trailer.postApplyChecksum) {
      problems.push(
        `ltx checksum of the database is ${formatChecksum(fileChecksum)}, newest LTX ${last.name} says ${formatChecksum(last.trailer.postApplyChecksum)}`,
      );
    }
    if (opts.readPos ?? true) {
      pos = await readFile(node.path(`${db}-pos`), 'utf8');
      const want = `${formatPos({ txid: last.header.maxTXID, postApplyChecksum: last.trailer.postApplyChecksum })}\n`;
      if (pos !== want) problems.push(`${db}-pos is ${JSON.stringify(pos)}, expected ${JSON.stringify(want)}`);
    }
  }
  if (problems.length > 0) throw new Error(`${db}: ${problems.join('; ')}`);
  return {
    chain,
    txid: last!.header.maxTXID,
    postApply: last!.trailer.postApplyChecksum,
    fileChecksum,
    pos,
  };
}

/**
 * The database as of its newest transaction. In WAL mode that is the
 * database file with the WAL frames of the recorded transactions laid over
 * it (a checkpoint may not have copied them yet): read here directly from
 * the WAL file (frame = 24-byte header + page, salts at 8..15 matching the
 * WAL header's 16..23), independently of the store's own WAL code.
 * `databaseImage` gives its bytes; `withWalFrames` gives
 * the path of a file to checksum: the database file itself when no WAL
 * frame counts.
 */
export async function databaseImage(node: LiteFSNode, db: string): Promise<Buffer> {
  const chain = await readChain(node.ltxDir(db));
  const image = await withWalFrames(node, db, chain.at(-1));
  try {
    return await readFile(image.path);
  } finally {
    await image.cleanup();
  }
}

async function withWalFrames(
  node: LiteFSNode,
  db: string,
  last: ChainEntry | undefined,
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dbPath = node.databaseFile(db);
  const asIs = { path: dbPath, cleanup: async () => {} };
  if (last === undefined || last.header.walSize === 0n) return asIs;
  const wal = await readFile(path.join(path.dirname(dbPath), 'wal')).catch(() => null);
  if (wal === null || wal.length < 32) return asIs;
  const salt = wal.subarray(16, 24);
  if (wal.readUInt32BE(16) !== last.header.walSalt1 || wal.readUInt32BE(20) !== last.header.walSalt2) return asIs;
  const ps = wal.readUInt32BE(8);
  const end = Number(last.header.walOffset + last.header.walSize);
  const image = Buffer.from(await readFile(dbPath));
  let out = Buffer.alloc(Math.max(image.length, last.header.commit * ps));
  image.copy(out);
  for (let at = 32; at + 24 + ps <= end; at += 24 + ps) {
    if (!wal.subarray(at + 8, at + 16).equals(salt)) throw new Error(`${db}: WAL frame at ${at} has foreign salts`);
    const pgno = wal.readUInt32BE(at);
    wal.copy(out, (pgno - 1) * ps, at + 24, at + 24 + ps);
  }
  out = out.subarray(0, last.header.commit * ps);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'litefs-walimage-'));
  const file = path.join(dir, 'image.db');
  await writeFile(file, out);
  return { path: file, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Number of LTX files (not *.tmp) in a directory. */
export async function ltxCount(dir: string): Promise<number> {
  return (await readdir(dir)).filter((n) => parseLtxFilename(n) !== null).length;
}
