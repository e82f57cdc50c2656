import { request } from 'undici';
import { describeError } from '../internal/index.js';
import type { NodeInfo } from '../http/index.js';
import { DEFAULT_API_URL, apiURL, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';
import { NODE_CLIENT_OPTIONS, NODE_CLIENT_USAGE, nodeClient, refusalText, type NodeClient } from './node-client.js';

const USAGE = `usage: litefs status [-url URL] [--json] [-token TOKEN] [-ca PATH] [-cert PATH -key PATH] [-config PATH]

Shows this node's role, the primary it follows, its replication lag and the
position (TXID/checksum) of every database, from the node's API.

  -url URL         the node's API (default ${DEFAULT_API_URL}; https:// for a TLS node)
  --json           print the node's /info JSON instead of a table
${NODE_CLIENT_USAGE}`;

export const statusCommand: Command = async (argv) => {
  const args = parseCommandArgs('status', USAGE, argv, {
    url: { type: 'string', default: DEFAULT_API_URL },
    json: { type: 'boolean', default: false },
    ...NODE_CLIENT_OPTIONS,
  });
  if (typeof args === 'number') return args;
  const url = apiURL(args.values.url);
  let info: NodeInfo;
  let client: NodeClient;
  try {
    client = await nodeClient(args.values);
  } catch (err) {
    process.stderr.write(`litefs status: ${describeError(err)}\n`);
    return 1;
  }
  try {
    info = await fetchInfo(url, 5000, client);
  } catch (err) {
    process.stderr.write(`litefs status: cannot reach ${url}: ${client.explain(err, url)}\n`);
    return 1;
  } finally {
    await client.close();
  }
  if (args.values.json) {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(formatStatus(info));
  return 0;
};

/** GET /info; with a client, over its TLS settings and with its token. */
export async function fetchInfo(url: string, timeoutMs = 5000, client?: NodeClient): Promise<NodeInfo> {
  const res = await request(new URL('/info', url), {
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    ...(client !== undefined ? { dispatcher: client.dispatcher, headers: client.headers } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode === 401) throw new Error(`the node refused this client (HTTP 401): ${refusalText(text)}`);
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${refusalText(text)}`);
  return JSON.parse(text) as NodeInfo;
}

function lagText(info: NodeInfo): string {
  if (info.isPrimary) return '0s (primary)';
  if (info.lagMs === null) return 'not synced yet';
  return `${(info.lagMs / 1000).toFixed(3)}s`;
}

export function formatStatus(info: NodeInfo): string {
  const role = info.isPrimary ? 'primary' : info.ready ? 'replica' : 'replica, not caught up with a primary';
  const lines = [
    `node      ${info.nodeID} (${info.hostname || '-'})`,
    `role      ${role}${info.candidate ? '' : ', not a candidate'}`,
    `primary   ${info.isPrimary ? 'this node' : (info.primary?.hostname ?? '-')}`,
    `ready     ${info.ready ? 'yes' : 'no'}`,
    `lag       ${lagText(info)}`,
    `mount     ${info.path}`,
  ];
  if (info.isPrimary) lines.push(`replicas  ${info.subscribers} connected`);
  lines.push('');
  if (info.databases.length === 0) {
    lines.push('no databases');
  } else {
    const rows = [
      ['DATABASE', 'TXID', 'CHECKSUM', 'PAGES', 'PAGE SIZE'],
      ...info.databases.map((d) => [d.name, d.txid, d.checksum, String(d.pageCount), String(d.pageSize)]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows)
      lines.push(
        r
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join('  ')
          .trimEnd(),
      );
  }
  return `${lines.join('\n')}\n`;
}
