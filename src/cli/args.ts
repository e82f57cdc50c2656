/** The node API a CLI command talks to unless told otherwise (LiteFS's default). */
export const DEFAULT_API_URL = 'http://localhost:20202';

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
