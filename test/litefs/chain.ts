import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatChecksum, formatPos, parseLtxFilename, verifyLtxFile, type VerifyResult } from '../../src/ltx/index.js';
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
  opts: { allowTrimmedStart?: boolean; readPos?: boolean; cache?: Map<string, ChainEntry> } = {},
): Promise<ConsistencyReport> {
  const chain = await readChain(node.ltxDir(db), opts.cache);
  const problems = chainProblems(chain, opts);
  const last = chain[chain.length - 1];
  const fileChecksum = await cliChecksum(node.databaseFile(db));
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

/** Number of LTX files (not *.tmp) in a directory. */
export async function ltxCount(dir: string): Promise<number> {
  return (await readdir(dir)).filter((n) => parseLtxFilename(n) !== null).length;
}
