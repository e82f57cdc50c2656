import { CodedError } from '../internal/index.js';

/** What kind of mistake a problem describes, so callers can branch without parsing text. */
export type ConfigProblemKind =
  | 'syntax' // the text is not valid YAML
  | 'unknown-key' // a key litefs-ts (and LiteFS v0.5) does not know
  | 'wrong-type' // e.g. a list where a string belongs
  | 'invalid-value' // right type, unacceptable value
  | 'missing' // a required key is absent or empty
  | 'conflict' // keys that are fine alone but not together
  | 'unsupported'; // a LiteFS feature litefs-ts deliberately lacks

export interface ConfigProblem {
  kind: ConfigProblemKind;
  /** Dotted key path, e.g. `lease.consul.ttl` or `exec[1].cmd`; '' for the whole file. */
  path: string;
  /** 1-based position in the file, when the problem has one. */
  line?: number;
  column?: number;
  /** A complete sentence naming the key, its position, the value and what is allowed. */
  message: string;
}

export type ConfigErrorCode =
  | 'ERR_CONFIG_INVALID' // one or more schema problems
  | 'ERR_CONFIG_SYNTAX' // YAML syntax errors (problems are all of kind 'syntax')
  | 'ERR_CONFIG_NOT_FOUND' // no file at the given path or on the search path
  | 'ERR_CONFIG_READ'; // the file exists but could not be read

/**
 * Every problem found in one pass, not just the first: an operator fixing a
 * config file should not have to restart the daemon once per typo.
 */
export class ConfigError extends CodedError<ConfigErrorCode> {
  readonly source: string;
  readonly problems: readonly ConfigProblem[];

  constructor(code: ConfigErrorCode, source: string, problems: readonly ConfigProblem[], options?: { cause?: unknown; message?: string }) {
    super(code, options?.message ?? formatProblems(source, problems), options);
    this.source = source;
    this.problems = problems;
  }
}

function formatProblems(source: string, problems: readonly ConfigProblem[]): string {
  if (problems.length === 1) return `invalid config ${source}: ${problems[0]!.message}`;
  const lines = problems.map((p) => `  - ${p.message}`);
  return `invalid config ${source}: ${problems.length} problems:\n${lines.join('\n')}`;
}

/** "at line 7, column 8" or "" when the position is unknown. */
export function at(line: number | undefined, column: number | undefined): string {
  if (line === undefined) return '';
  return column === undefined ? ` at line ${line}` : ` at line ${line}, column ${column}`;
}
