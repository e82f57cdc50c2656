import { request } from 'undici';
import { parseGoDuration } from '../config/index.js';
import { describeError } from '../internal/index.js';
import { DEFAULT_API_URL, apiURL, parseCommandArgs } from './args.js';
import { exitCodeOf, forwardSignals, startChild } from './child.js';
import type { Command } from './commands.js';
import { NODE_CLIENT_OPTIONS, NODE_CLIENT_USAGE, nodeClient, refusalText, type NodeClient } from './node-client.js';
import { fetchInfo } from './status.js';
import { untilAnswered } from './wait-api.js';

const USAGE = `usage: litefs run [options] -- CMD [ARGS...]

Runs CMD once the local node is ready (primary, or a replica caught up
with the primary), passes signals on to it, and exits with its exit code.
The node's API may come up after this command starts (systemd, compose):
it is waited for, within the same timeout.

  -url URL            the node's API (default ${DEFAULT_API_URL})
  -promote            make this node the primary first (handoff from the current one)
  -if-candidate       run CMD only if this node is a lease candidate (else exit 0)
  -timeout DURATION   how long to wait for the node to be ready: 90s, 2m, or
                      seconds (default 60)
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
  const timeoutMs = parseTimeout(args.values.timeout);
  if (cmd.length === 0 || timeoutMs === undefined) {
    process.stderr.write(
      `litefs run: ${cmd.length === 0 ? 'no command given after --' : `invalid -timeout ${args.values.timeout}`}\n${USAGE}`,
    );
    return 2;
  }
  const url = apiURL(args.values.url);
  const deadline = Date.now() + timeoutMs;
  let client: NodeClient | null = null;
  try {
    client = await nodeClient(args.values);
    const c = client;
    const info = await untilAnswered(() => fetchInfo(url, 5000, c), url, deadline, 'run');
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
    await waitReady(url, deadline, timeoutMs, client);
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

/** -timeout: a Go duration, or a bare number of seconds (what it used to take). */
function parseTimeout(text: string): number | undefined {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseGoDuration(text);
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

async function waitReady(url: string, deadline: number, timeoutMs: number, client: NodeClient): Promise<void> {
  for (;;) {
    const info = await untilAnswered(() => fetchInfo(url, 5000, client), url, deadline, 'run');
    if (info.ready) return;
    if (Date.now() >= deadline) throw new Error(`the node at ${url} was not ready within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
