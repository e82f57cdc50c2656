/**
 * `litefs ltx …`: inspect, verify and apply LTX files, and print a database
 * file's rolling checksum. Exit codes: 0 ok, 1 a file or database was bad
 * (one line per problem on stderr), 2 usage error.
 */
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { describeError } from '../internal/index.js';
import {
  applyLtxFiles,
  checksumDatabaseFile,
  formatPos,
  hex64,
  LtxDecoder,
  verifyLtxFile,
  type Header,
  type Trailer,
} from '../ltx/index.js';
import type { Command } from './commands.js';

class UsageError extends Error {}

const USAGE = `usage: litefs ltx <command> [arguments]

commands:
  dump FILE [--json]         print the header, page numbers and trailer of an LTX file
  verify [--strict] FILE...  fully validate LTX files, including the file checksum
  checksum DBFILE            print the rolling checksum of a SQLite database file
  apply FILE... --db DBFILE  apply a contiguous chain of LTX files to a database file

Run "litefs ltx <command> --help" for details.
`;

const HELP: Record<string, string> = {
  dump: `usage: litefs ltx dump FILE [--json]

Decodes FILE and prints its header fields, the page number of every page
frame and the trailer, verifying the file checksum at the end.

  --json   print one JSON object instead of text
`,
  verify: `usage: litefs ltx verify [--strict] FILE...

Decodes every FILE completely and checks the file checksum (and, for
snapshots, the post-apply checksum). Prints "FILE: ok …" per good file and
"FILE: reason" on stderr per bad one; exits 1 if any file is bad.

  --strict   also require ordered page numbers within the commit, no lock
             page, complete snapshots and no bytes after the trailer
`,
  checksum: `usage: litefs ltx checksum DBFILE

Prints the LiteFS rolling checksum of a SQLite database file (16 hex digits):
the XOR of the CRC-64 of every page but the lock page, with the top bit set.
`,
  apply: `usage: litefs ltx apply FILE... --db DBFILE

Applies LTX files, in the order given, to DBFILE. Every file is verified and
the chain is checked (contiguous TXIDs; the first file's pre-apply checksum
equals the database's unless it is a snapshot; each pre-apply checksum equals
the previous post-apply checksum) before the database is touched.

  --db DBFILE   the database file to update (created for a snapshot)
`,
};

class Out {
  private pending = '';

  async line(s: string): Promise<void> {
    this.pending += s + '\n';
    if (this.pending.length >= 1 << 16) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending === '') return;
    const data = this.pending;
    this.pending = '';
    if (!process.stdout.write(data)) await once(process.stdout, 'drain');
  }
}

const help = { type: 'boolean', short: 'h' } as const;

// parseArgs throws on unknown options and missing values; those are usage errors.
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function formatTimestamp(ms: bigint): string {
  const n = Number(ms);
  const d = new Date(n);
  return Number.isNaN(d.getTime()) ? 'out of range' : d.toISOString();
}

function headerJSON(h: Header): Record<string, unknown> {
  return {
    Version: 1,
    Flags: h.flags,
    PageSize: h.pageSize,
    Commit: h.commit,
    MinTXID: hex64(h.minTXID),
    MaxTXID: hex64(h.maxTXID),
    Timestamp: h.timestamp,
    PreApplyChecksum: hex64(h.preApplyChecksum),
    WALOffset: h.walOffset,
    WALSize: h.walSize,
    WALSalt1: h.walSalt1,
    WALSalt2: h.walSalt2,
    NodeID: h.nodeID,
  };
}

function trailerJSON(t: Trailer): Record<string, unknown> {
  return { PostApplyChecksum: hex64(t.postApplyChecksum), FileChecksum: hex64(t.fileChecksum) };
}

// JSON numbers are exact in the text even when a JavaScript number could not hold them.
function stringifyExact(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `\u0000${x.toString()}` : x)).replace(/"\\u0000(-?\d+)"/g, '$1');
}

async function dump(argv: string[]): Promise<number> {
  const { values, positionals } = usage(() =>
    parseArgs({ args: argv, options: { json: { type: 'boolean' }, help }, allowPositionals: true, strict: true }),
  );
  if (values.help === true) {
    process.stdout.write(HELP.dump!);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('dump needs exactly one FILE');
  const file = positionals[0]!;
  const json = values.json === true;
  const out = new Out();
  const dec = new LtxDecoder(file);
  const pgnos: number[] = [];
  try {
    const h = await dec.decodeHeader();
    if (!json) {
      await out.line('# HEADER');
      await out.line(`Version:    1`);
      await out.line(`Flags:      0x${h.flags.toString(16).padStart(8, '0')}`);
      await out.line(`Page size:  ${h.pageSize}`);
      await out.line(`Commit:     ${h.commit}`);
      await out.line(`Min TXID:   ${hex64(h.minTXID)} (${h.minTXID})`);
      await out.line(`Max TXID:   ${hex64(h.maxTXID)} (${h.maxTXID})`);
      await out.line(`Timestamp:  ${formatTimestamp(h.timestamp)} (${h.timestamp})`);
      await out.line(`Pre-apply:  ${hex64(h.preApplyChecksum)}`);
      await out.line(`WAL offset: ${h.walOffset}`);
      await out.line(`WAL size:   ${h.walSize}`);
      await out.line(`WAL salt:   ${h.walSalt1.toString(16).padStart(8, '0')} ${h.walSalt2.toString(16).padStart(8, '0')}`);
      await out.line(`Node ID:    ${hex64(h.nodeID)}`);
      await out.line('');
      await out.line('# PAGE DATA');
    }
    for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) {
      if (!json) await out.line(`Frame #${pgnos.length}: pgno=${p.pgno}`);
      pgnos.push(p.pgno);
    }
    const t = await dec.close();
    if (json) {
      await out.line(
        stringifyExact({
          Header: { ...headerJSON(h), Time: formatTimestamp(h.timestamp) },
          Pages: pgnos,
          Trailer: trailerJSON(t),
        }),
      );
    } else {
      await out.line('');
      await out.line('# TRAILER');
      await out.line(`Post-apply:    ${hex64(t.postApplyChecksum)}`);
      await out.line(`File checksum: ${hex64(t.fileChecksum)}`);
    }
    await out.flush();
    return 0;
  } catch (err) {
    await out.flush();
    process.stderr.write(`${file}: ${describeError(err)}\n`);
    return 1;
  } finally {
    await dec.destroy();
  }
}

async function verify(argv: string[]): Promise<number> {
  const { values, positionals } = usage(() =>
    parseArgs({ args: argv, options: { strict: { type: 'boolean' }, help }, allowPositionals: true, strict: true }),
  );
  if (values.help === true) {
    process.stdout.write(HELP.verify!);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('verify needs at least one FILE');
  const out = new Out();
  let bad = 0;
  for (const file of positionals) {
    try {
      const r = await verifyLtxFile(file, { strict: values.strict === true });
      const h = r.header;
      await out.line(
        `${file}: ok (txid ${hex64(h.minTXID)}-${hex64(h.maxTXID)}, ${r.pageCount} pages, commit ${h.commit}, post-apply ${hex64(r.trailer.postApplyChecksum)})`,
      );
    } catch (err) {
      bad++;
      await out.flush();
      process.stderr.write(`${file}: ${describeError(err)}\n`);
    }
  }
  await out.flush();
  return bad === 0 ? 0 : 1;
}

async function checksum(argv: string[]): Promise<number> {
  const { values, positionals } = usage(() => parseArgs({ args: argv, options: { help }, allowPositionals: true, strict: true }));
  if (values.help === true) {
    process.stdout.write(HELP.checksum!);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('checksum needs exactly one DBFILE');
  const file = positionals[0]!;
  try {
    const c = await checksumDatabaseFile(file);
    process.stdout.write(`${hex64(c)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${file}: ${describeError(err)}\n`);
    return 1;
  }
}

async function apply(argv: string[]): Promise<number> {
  const { values, positionals } = usage(() =>
    parseArgs({ args: argv, options: { db: { type: 'string' }, help }, allowPositionals: true, strict: true }),
  );
  if (values.help === true) {
    process.stdout.write(HELP.apply!);
    return 0;
  }
  if (values.db === undefined || values.db === '') throw new UsageError('apply needs --db DBFILE');
  if (positionals.length === 0) throw new UsageError('apply needs at least one LTX FILE');
  try {
    const r = await applyLtxFiles(values.db, positionals);
    process.stdout.write(
      `${values.db}: applied ${r.files} file(s), ${r.pagesWritten} page(s); position ${formatPos(r.pos)}, ${r.commit} page(s) of ${r.pageSize} bytes\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`${values.db}: ${describeError(err)}\n`);
    return 1;
  }
}

const subcommands: Record<string, (argv: string[]) => Promise<number>> = { dump, verify, checksum, apply };

export const ltxCommand: Command = async (argv) => {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (name === undefined) {
    process.stderr.write(`litefs ltx: missing command\n${USAGE}`);
    return 2;
  }
  const sub = subcommands[name];
  if (sub === undefined) {
    process.stderr.write(`litefs ltx: unknown command "${name}" (run "litefs ltx --help")\n`);
    return 2;
  }
  try {
    return await sub(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`litefs ltx ${name}: ${err.message} (run "litefs ltx ${name} --help")\n`);
      return 2;
    }
    throw err;
  }
};
