import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
import { describeError } from '../internal/index.js';

/** The node API a CLI command talks to unless told otherwise (LiteFS's default). */
export const DEFAULT_API_URL = 'http://localhost:20202';

/**
 * A node's API URL as an operator types it: `host:port` is as good as
 * `http://host:port` (http.addr is written that way in litefs.yml).
 */
export function apiURL(text: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
}

/**
 * LiteFS flags are Go-style (`-config`, `-name`); accept those as well as
 * `--config`. Everything after a bare `--` is left alone (a command line).
 */
export function normalizeFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return out.concat(argv.slice(i));
    out.push(/^-[a-z][a-z.-]+(=.*)?$/.test(a) ? `-${a}` : a);
  }
  return out;
}

const HELP = { help: { type: 'boolean', short: 'h', default: false } } as const;

type ParsedCommand<T extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T & typeof HELP; allowPositionals: boolean; strict: true }>
>;

/**
 * The preamble every command shares: Go- or GNU-style flags, `-h/--help`
 * (usage on stdout, exit 0), and a usage error (reason and usage on stderr,
 * exit 2). Returns the parsed arguments, or the exit code to return.
 * `check` may throw to reject a combination parseArgs cannot express.
 */
export function parseCommandArgs<T extends ParseArgsOptionsConfig>(
  command: string,
  usage: string,
  argv: string[],
  options: T,
  opts: { allowPositionals?: boolean; check?: (parsed: ParsedCommand<T>) => void } = {},
): ParsedCommand<T> | number {
  let parsed: ParsedCommand<T>;
  try {
    parsed = parseArgs({
      args: normalizeFlags(argv),
      options: { ...options, ...HELP },
      allowPositionals: opts.allowPositionals ?? false,
      strict: true,
    });
    opts.check?.(parsed);
  } catch (err) {
    process.stderr.write(`litefs ${command}: ${describeError(err)}\n${usage}`);
    return 2;
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(usage);
    return 0;
  }
  return parsed;
}
