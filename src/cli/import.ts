/**
 * `litefs import -name DB [-url URL] FILE`: replaces a database on the
 * primary with a SQLite file, streamed to POST /import. Exit codes: 0
 * imported, 1 the node refused or could not be reached (one line on
 * stderr, with the node's own reason), 2 usage error.
 *
 * Also home of what `litefs export` shares with it: flag parsing and the
 * progress bar.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { isErrno } from '../internal/index.js';
import { formatPos, posFromJSON } from '../ltx/index.js';
import { isHotJournalFile } from '../store/index.js';
import { DEFAULT_API_URL, apiURL, normalizeFlags } from './args.js';
import type { Command } from './commands.js';
import { NODE_CLIENT_OPTIONS, NODE_CLIENT_USAGE, nodeClient, refusalText, type NodeClient, type NodeClientFlags } from './node-client.js';

const USAGE = `usage: litefs import -name DB [-url URL] [-token TOKEN] [-ca PATH] [-cert PATH -key PATH] [-config PATH] FILE

Replaces database DB with the SQLite database FILE, as one transaction
that replicas receive like any other; DB is created if it does not exist.
Run it against the primary. FILE is streamed, never held in memory. A
WAL-mode FILE is converted to rollback-journal mode; FILE must not have
transactions left in FILE-wal or a hot FILE-journal.

  -name DB         the database to replace
  -url URL         the primary's API (default ${DEFAULT_API_URL}; https:// for a TLS node)
${NODE_CLIENT_USAGE}`;

/** Files larger than this get a progress bar (when stderr is a terminal). */
export const PROGRESS_MIN_BYTES = 4 << 20;

export interface TransferArgs {
  name: string;
  url: string;
  file: string;
  /** Token and TLS flags (node-client.ts). */
  client: NodeClientFlags;
}

/**
 * Parses `-name DB [-url URL] FILE` (Go-style single-dash flags or GNU
 * style). Prints help (exit 0) or a one-line usage error (exit 2) itself.
 */
export function parseTransferArgs(command: string, usage: string, argv: string[]): TransferArgs | { exit: number } {
  const fail = (reason: string): { exit: number } => {
    process.stderr.write(`litefs ${command}: ${reason} (run "litefs ${command} --help")\n`);
    return { exit: 2 };
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: normalizeFlags(argv),
      options: {
        name: { type: 'string' },
        url: { type: 'string', default: DEFAULT_API_URL },
        ...NODE_CLIENT_OPTIONS,
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return fail(describeParseError(err));
  }
  if (parsed.values.help) {
    process.stdout.write(usage);
    return { exit: 0 };
  }
  const { name, url: given } = parsed.values;
  const url = apiURL(given);
  if (name === undefined || name === '') return fail('missing -name DB');
  const files = parsed.positionals;
  if (files.length === 0) return fail('missing FILE');
  if (files.length > 1) return fail(`expected one FILE, got ${files.length}: ${files.join(' ')}`);
  let parsedURL: URL;
  try {
    parsedURL = new URL(url);
  } catch {
    return fail(`invalid -url ${JSON.stringify(given)}`);
  }
  if (parsedURL.protocol !== 'http:' && parsedURL.protocol !== 'https:') {
    return fail(`invalid -url ${JSON.stringify(given)}: only http:// and https:// are supported`);
  }
  const { token, ca, cert, key, config } = parsed.values;
  return { name, url, file: files[0]!, client: { token, ca, cert, key, config } };
}

function describeParseError(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  // parseArgs quotes the option, e.g. '--foo', '--name <value>' or '-h, --help'.
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  const flag = (/--([\w.-]+)/.exec(quoted) ?? /-([\w.-]+)/.exec(quoted))?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag !== undefined) return `unknown flag -${flag}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined) {
    return /argument missing/.test(message) ? `flag -${flag} needs a value` : `flag -${flag} takes no value`;
  }
  return message.split('\n')[0]!;
}

/** A one-line reason for a thrown value, without Node's doubled "ENOENT: ENOENT: …". */
export function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/** `${base}${path}?name=…` */
export function endpoint(base: string, path: string, name: string): URL {
  const u = new URL(path, base);
  u.searchParams.set('name', name);
  return u;
}

/** The node's text answer as one line. */
export function oneLine(text: string): string {
  const t = text.trim().replace(/\s*\n\s*/g, ' ');
  return t === '' ? '(no reason given)' : t;
}

/** A minimal terminal progress bar: bar, percent, bytes, rate. */
export class ProgressBar {
  private readonly started: number;
  private lastDraw = -Infinity;
  private done = 0;
  private finished = false;

  constructor(
    private readonly out: { write(s: string): unknown; columns?: number },
    private readonly total: number,
    private readonly label: string,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now();
  }

  /** Sets the bytes done; redraws at most ten times a second. */
  update(done: number): void {
    this.done = done;
    const t = this.now();
    if (t - this.lastDraw < 100) return;
    this.lastDraw = t;
    this.draw();
  }

  /** Final redraw and newline. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.draw();
    this.out.write('\n');
  }

  private draw(): void {
    const line = formatProgress(this.label, this.done, this.total, this.now() - this.started, this.out.columns ?? 80);
    this.out.write(`\r${line}\x1b[K`);
  }
}

/** One progress line, e.g. `uploading [#####-----]  50.0%  52.4/104.9 MB  87.3 MB/s`. */
export function formatProgress(label: string, done: number, total: number, elapsedMs: number, columns: number): string {
  const fraction = total <= 0 ? 1 : Math.min(1, done / total);
  const pct = `${(fraction * 100).toFixed(1)}%`.padStart(6);
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const rate = elapsedMs > 0 ? `${mb((done / elapsedMs) * 1000)} MB/s` : '- MB/s';
  const tail = `${pct}  ${mb(done)}/${mb(total)} MB  ${rate}`;
  const width = Math.max(10, Math.min(40, columns - label.length - tail.length - 6));
  const filled = Math.round(fraction * width);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]  ${tail}`;
}

/** A bar on stderr for a transfer of `total` bytes, or null (not a terminal, or small). */
export function progressFor(total: number, label: string): ProgressBar | null {
  if (process.stderr.isTTY !== true || total <= PROGRESS_MIN_BYTES) return null;
  return new ProgressBar(process.stderr, total, label);
}

/**
 * Why FILE cannot be imported as it stands, or null: a hot journal means
 * it is mid-transaction (or its writer crashed), and WAL frames hold
 * transactions the main file does not have yet.
 */
async function sidecarProblem(file: string): Promise<string | null> {
  if (await isHotJournalFile(`${file}-journal`)) {
    return `${file}-journal is a hot journal: ${file} is mid-transaction or its writer crashed; open it once with sqlite3 to roll back, then import`;
  }
  try {
    const wal = await stat(`${file}-wal`);
    if (wal.size > 32) {
      return `${file}-wal holds transactions that are not in ${file} yet; checkpoint first: sqlite3 ${file} "PRAGMA wal_checkpoint(TRUNCATE)"`;
    }
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  return null;
}

async function* upload(file: string, bar: ProgressBar | null): AsyncGenerator<Buffer> {
  let sent = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    sent += chunk.length;
    bar?.update(sent);
    yield chunk;
  }
}

export const importCommand: Command = async (argv) => {
  const args = parseTransferArgs('import', USAGE, argv);
  if ('exit' in args) return args.exit;
  const { name, url, file } = args;
  const fail = (reason: string): number => {
    process.stderr.write(`litefs import: ${reason}\n`);
    return 1;
  };
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) return fail(`${file} is not a regular file`);
    size = st.size;
    const problem = await sidecarProblem(file);
    if (problem !== null) return fail(problem);
  } catch (err) {
    return fail(`cannot read ${file}: ${reason(err)}`);
  }
  let client: NodeClient;
  try {
    client = await nodeClient(args.client);
  } catch (err) {
    return fail(reason(err));
  }
  const bar = progressFor(size, 'uploading');
  let status: number;
  let text: string;
  try {
    const res = await request(endpoint(url, '/import', name), {
      method: 'POST',
      dispatcher: client.dispatcher,
      headers: { ...client.headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: Readable.from(upload(file, bar), { objectMode: false }),
      // The node answers once the whole file is replicated-ready: no fixed limit.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    if (bar !== null) process.stderr.write('\n');
    return fail(`import to ${url} failed: ${client.explain(err, url)}`);
  } finally {
    await client.close();
  }
  bar?.finish();
  if (status !== 200) return fail(`the node refused the import (HTTP ${status}): ${refusalText(text)}`);
  let pos;
  try {
    pos = posFromJSON(JSON.parse(text));
  } catch (err) {
    return fail(`the node answered with an unexpected body: ${reason(err)}`);
  }
  process.stdout.write(`${name}: imported ${file} (${size} bytes); position ${formatPos(pos)}\n`);
  return 0;
};
