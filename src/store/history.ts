import { appendFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { formatNodeID, isErrno, type Logger } from '../internal/index.js';
import { formatChecksum, formatTXID, readLtxHeader, type Header } from '../ltx/index.js';
import type { DB } from './db.js';
import { listLtxFiles } from './ltx-files.js';
import type { Store } from './store.js';

const NODE_IDS_FILE = 'node-ids';
/** Enough history to recognise this data directory's own recent LTX files. */
const MAX_NODE_IDS = 1000;

/**
 * Records this start's node ID in the data directory. Node IDs are random
 * per start (so cloned volumes never share one), which means LTX files
 * written here before a restart carry an older ID: this list is how a node
 * recognises transactions it authored itself.
 */
export async function recordNodeID(dataDir: string, nodeID: string): Promise<void> {
  const path = join(dataDir, NODE_IDS_FILE);
  const ids = await readNodeIDs(dataDir);
  if (ids.size >= MAX_NODE_IDS) {
    const keep = [...ids].slice(-(MAX_NODE_IDS - 1));
    await rm(path, { force: true });
    await appendFile(path, keep.map((id) => `${id}\n`).join(''));
  }
  await appendFile(path, `${nodeID}\n`);
}

export async function readNodeIDs(dataDir: string): Promise<Set<string>> {
  try {
    const text = await readFile(join(dataDir, NODE_IDS_FILE), 'utf8');
    return new Set(text.split('\n').filter((l) => /^[0-9A-F]{16}$/.test(l)));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return new Set();
    throw err;
  }
}

/**
 * A snapshot from the primary is about to replace this database's history.
 * Files the primary's history already contains are simply deleted. Files
 * this node wrote itself while it was primary may hold transactions that
 * never reached anyone else (the async replication window, split brain):
 * those are moved to `<data>/quarantine/<db>/<time>/` and logged with their
 * TXIDs, never silently thrown away.
 */
export async function replaceHistory(db: DB, store: Store, snapshot: Header, snapshotPostApply: bigint, log: Logger): Promise<void> {
  const files = await listLtxFiles(store.sys, db.ltxDir);
  if (files.length === 0) return;
  const local = db.pos;
  if (local.txid === snapshot.maxTXID && local.postApplyChecksum === snapshotPostApply) {
    // Already at the snapshot's position: nothing of ours can be lost.
    for (const f of files) await rm(f.path, { force: true });
    return;
  }
  const own = await readNodeIDs(store.layout.dataDir);
  own.add(store.nodeIDString);
  const authored: { path: string; name: string; minTXID: bigint; maxTXID: bigint }[] = [];
  for (const f of files) {
    let header: Header | null = null;
    try {
      header = await readLtxHeader(f.path);
    } catch {
      header = null;
    }
    const author = header === null ? null : formatNodeID(header.nodeID);
    if (author !== null && own.has(author)) authored.push(f);
    else await rm(f.path, { force: true });
  }
  if (authored.length === 0) return;
  const dir = join(store.layout.quarantineDir, db.name, new Date().toISOString().replace(/[:.]/g, '-'));
  await mkdir(dir, { recursive: true });
  for (const f of authored) await rename(f.path, join(dir, f.name));
  const first = authored[0]!;
  const last = authored[authored.length - 1]!;
  log.warn(
    {
      db: db.name,
      discarded: `${formatTXID(first.minTXID)}..${formatTXID(last.maxTXID)}`,
      files: authored.length,
      movedTo: dir,
      localPosition: `${formatTXID(local.txid)}/${formatChecksum(local.postApplyChecksum)}`,
      primarySnapshot: `${formatTXID(snapshot.maxTXID)}/${formatChecksum(snapshotPostApply)}`,
    },
    'resnapshot replaces transactions this node wrote as primary; they may never have reached the new primary. Their LTX files were moved aside',
  );
}
