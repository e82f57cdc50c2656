import { request } from 'undici';
import { describeError } from '../internal/index.js';
import { DEFAULT_API_URL, parseCommandArgs } from './args.js';
import { exitCodeOf, forwardSignals, startChild } from './child.js';
import type { Command } from './commands.js';
import { NODE_CLIENT_OPTIONS, NODE_CLIENT_USAGE, nodeClient, refusalText, type NodeClient } from './node-client.js';
import { fetchInfo } from './status.js';

const USAGE = `usage: litefs run [-url URL] [-promote] [-if-candidate] [-timeout DURATION] [-token ...] -- CMD [ARGS...]

Runs CMD once the local node is ready (primary, or a replica caught up
with the primary), passes signals on to it, and exits with its exit code.

  -url URL         the node's API (default ${DEFAULT_API_URL})
  -promote         make this node the primary first (handoff from the current one)
  -if-candidate    run CMD only if this node is a lease candidate (else exit 0)
  -timeout SECS    how long to wait for the node to be ready (default 60)
${NODE_CLIENT_USAGE}`;

export const runCommand: Command = async (argv) => {
  const args = parseCommandArgs(
    'run',
    USAGE,
    argv,
    {
      url: { type: 'string', default: DEFAULT_API_URL },
      promote: { type: 'boolean', default: false },
      'if-candidate': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '60' },
      ...NODE_CLIENT_OPTIONS,
    },
    { allowPositionals: true },
  );
  if (typeof args === 'number') return args;
  const cmd = args.positionals;
  const timeoutSec = Number(args.values.timeout);
  if (cmd.length === 0 || !Number.isFinite(timeoutSec) || timeoutSec <= 0) {
    process.stderr.write(
      `litefs run: ${cmd.length === 0 ? 'no command given after --' : `invalid -timeout ${args.values.timeout}`}\n${USAGE}`,
    );
    return 2;
  }
  const url = args.values.url;
  let client: NodeClient | null = null;
  try {
    client = await nodeClient(args.values);
    const info = await fetchInfo(url, 5000, client);
    if (args.values['if-candidate'] && !info.candidate) return 0;
    if (args.values.promote && !info.isPrimary) {
      const res = await request(new URL('/promote', url), {
        method: 'POST',
        dispatcher: client.dispatcher,
        headers: client.headers,
        headersTimeout: 20_000,
        bodyTimeout: 20_000,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`promotion failed (${res.statusCode}): ${refusalText(text)}`);
    }
    await waitReady(url, timeoutSec * 1000, client);
  } catch (err) {
    process.stderr.write(`litefs run: ${client === null ? describeError(err) : client.explain(err, url)}\n`);
    return 1;
  } finally {
    await client?.close();
  }
  const child = startChild(cmd);
  const stop = forwardSignals(child);
  try {
    return await exitCodeOf(child);
  } finally {
    stop();
  }
};

async function waitReady(url: string, timeoutMs: number, client: NodeClient): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await fetchInfo(url, 5000, client);
    if (info.ready) return;
    if (Date.now() >= deadline) throw new Error(`the node at ${url} was not ready within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
