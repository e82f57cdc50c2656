/**
 * `litefs export -name DB [-url URL] FILE`: downloads a consistent copy of
 * a database from GET /export. As in LiteFS, FILE and its -journal, -wal
 * and -shm files are removed first (so no stale journal is ever applied to
 * the new file), the copy goes to FILE.tmp, is fsynced, renamed, and the
 * directory fsynced. Unlike LiteFS the old files are removed only once the
 * node has answered 200, and the copy is verified before the rename: it
 * must be a SQLite database whose rolling checksum equals the checksum of
 * the position the node reported (Litefs-Pos). Exit codes: 0 exported, 1
 * refused, unreachable or mismatched (one line on stderr), 2 usage error.
 */
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { request } from 'undici';
import { checksumDatabaseFile, formatChecksum, formatPos, parsePos, readDatabaseGeometry, syncDir, type Pos } from '../ltx/index.js';
import { POS_HEADER } from '../http/index.js';
import { DEFAULT_API_URL } from './args.js';
import type { Command } from './commands.js';
import { endpoint, parseTransferArgs, progressFor, reason } from './import.js';
import { NODE_CLIENT_USAGE, nodeClient, refusalText, type NodeClient } from './node-client.js';

const USAGE = `usage: litefs export -name DB [-url URL] [-token TOKEN] [-ca PATH] [-cert PATH -key PATH] [-config PATH] FILE

Writes a consistent copy of database DB, as of the node's current
position, to FILE. Once the node has answered, FILE and its -journal, -wal
and -shm files are removed; the copy is written to FILE.tmp, synced,
verified (a SQLite database whose LiteFS checksum equals the checksum of
the node's position) and renamed to FILE. Works on any node.

  -name DB         the database to export
  -url URL         the node's API (default ${DEFAULT_API_URL}; https:// for a TLS node)
${NODE_CLIENT_USAGE}`;

export const exportCommand: Command = async (argv) => {
  const args = parseTransferArgs('export', USAGE, argv);
  if ('exit' in args) return args.exit;
  const { name, url, file } = args;
  const fail = (reason: string): number => {
    process.stderr.write(`litefs export: ${reason}\n`);
    return 1;
  };

  let client: NodeClient;
  try {
    client = await nodeClient(args.client);
  } catch (err) {
    return fail(reason(err));
  }
  try {
    return await exportWith(client, name, url, file, fail);
  } finally {
    await client.close();
  }
};

async function exportWith(client: NodeClient, name: string, url: string, file: string, fail: (reason: string) => number): Promise<number> {
  let res;
  try {
    res = await request(endpoint(url, '/export', name), {
      method: 'GET',
      dispatcher: client.dispatcher,
      headers: client.headers,
      // The node copies the database locally before it answers.
      headersTimeout: 0,
      bodyTimeout: 300_000,
    });
  } catch (err) {
    return fail(`export from ${url} failed: ${client.explain(err, url)}`);
  }
  if (res.statusCode !== 200) {
    const text = await res.body.text().catch(() => '');
    return fail(`the node refused the export (HTTP ${res.statusCode}): ${refusalText(text)}`);
  }
  let pos: Pos | null = null;
  const rawPos = res.headers[POS_HEADER.toLowerCase()];
  const rawLength = res.headers['content-length'];
  const expected = typeof rawLength === 'string' && /^\d+$/.test(rawLength) ? Number(rawLength) : null;
  try {
    if (typeof rawPos === 'string') pos = parsePos(rawPos);
  } catch (err) {
    res.body.destroy();
    return fail(`the node sent an invalid ${POS_HEADER} header: ${reason(err)}`);
  }

  const tmp = `${file}.tmp`;
  let size = 0;
  try {
    for (const suffix of ['', '-journal', '-wal', '-shm']) await rm(`${file}${suffix}`, { force: true });
    const bar = expected === null ? null : progressFor(expected, 'downloading');
    const fh = await open(tmp, 'w', 0o644);
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        let done = 0;
        while (done < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, size + done);
          done += bytesWritten;
        }
        size += chunk.length;
        bar?.update(size);
      }
      bar?.finish();
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    res.body.destroy();
    await rm(tmp, { force: true });
    return fail(`export of ${name} failed after ${size} bytes: ${reason(err)}`);
  }

  const problem = await verify(tmp, size, expected, pos);
  if (problem !== null) {
    await rm(tmp, { force: true });
    return fail(`${problem}; removed ${tmp}`);
  }
  try {
    await rename(tmp, file);
    await syncDir(dirname(file));
  } catch (err) {
    await rm(tmp, { force: true });
    return fail(`cannot move ${tmp} to ${file}: ${reason(err)}`);
  }
  if (pos === null) {
    process.stderr.write(`litefs export: warning: the node sent no ${POS_HEADER} header, so the copy's checksum could not be verified\n`);
    process.stdout.write(`${name}: exported to ${file} (${size} bytes)\n`);
  } else {
    process.stdout.write(`${name}: exported to ${file} (${size} bytes); position ${formatPos(pos)}\n`);
  }
  return 0;
}

/** Why the downloaded copy is not acceptable, or null. */
async function verify(path: string, size: number, expected: number | null, pos: Pos | null): Promise<string | null> {
  if (expected !== null && size !== expected) return `received ${size} bytes, the node announced ${expected}`;
  try {
    const geo = await readDatabaseGeometry(path);
    if (geo.pageCount * geo.pageSize !== size) {
      return `the copy is ${size} bytes but its header describes ${geo.pageCount} pages of ${geo.pageSize} bytes`;
    }
    if (pos === null) return null;
    const sum = await checksumDatabaseFile(path);
    if (sum !== pos.postApplyChecksum) {
      return `checksum mismatch: the copy has checksum ${formatChecksum(sum)}, position ${formatPos(pos)} has ${formatChecksum(pos.postApplyChecksum)}`;
    }
    return null;
  } catch (err) {
    return `the copy is not a valid SQLite database: ${reason(err)}`;
  }
}
