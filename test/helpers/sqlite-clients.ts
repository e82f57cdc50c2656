import { createRequire } from 'node:module';
import { runProcess, spawnInteractive, type ChildResult, type InteractiveChild, type RunOptions } from './processes.js';

/*
 * SQLite clients in child processes. The serving process must never do
 * synchronous I/O on its own mount, so every database access in tests goes
 * through one of these.
 */

export interface SqliteRunOptions extends RunOptions {
  /** SQLite busy timeout in ms (0: fail at once with "database is locked"). Default 0. */
  busyTimeoutMs?: number;
}

/**
 * Runs `sql` with the sqlite3 CLI against `dbPath` (statements on stdin,
 * -bail: stops at the first error, exit code 1). Output is list mode, one
 * row per line, columns separated by "|".
 */
export function runSqlite3(dbPath: string, sql: string, opts: SqliteRunOptions = {}): Promise<ChildResult> {
  const args = ['-batch', '-bail', '-cmd', `.timeout ${opts.busyTimeoutMs ?? 0}`, dbPath];
  return runProcess('sqlite3', args, { ...opts, input: sql });
}

function pythonPrelude(busyTimeoutMs: number): string {
  return ['import sqlite3, sys', `db = sqlite3.connect(sys.argv[1], timeout=${busyTimeoutMs / 1000}, isolation_level=None)`, ''].join('\n');
}

/**
 * Runs a Python script with `db` (a sqlite3 connection to `dbPath` in
 * autocommit mode: isolation_level=None, so BEGIN/COMMIT are explicit) and
 * `sys.argv[2:]` = `args`. Unbuffered stdout.
 */
export function runPythonSqlite(dbPath: string, script: string, opts: SqliteRunOptions & { args?: string[] } = {}): Promise<ChildResult> {
  return runProcess('python3', ['-u', '-c', pythonPrelude(opts.busyTimeoutMs ?? 0) + script, dbPath, ...(opts.args ?? [])], opts);
}

/** Like runPythonSqlite, for a script that talks over stdin/stdout while running (lock holders). */
export function spawnPythonSqlite(
  dbPath: string,
  script: string,
  opts: Omit<SqliteRunOptions, 'input'> & { args?: string[] } = {},
): InteractiveChild {
  return spawnInteractive('python3', ['-u', '-c', pythonPrelude(opts.busyTimeoutMs ?? 0) + script, dbPath, ...(opts.args ?? [])], opts);
}

/** Runs any Python code: `python3 -u -c code args...`. */
export function runPython(code: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<ChildResult> {
  return runProcess('python3', ['-u', '-c', code, ...args], opts);
}

const requireHere = createRequire(import.meta.url);

/**
 * Runs `body` (an ES module body) in a node child with `db` = a
 * better-sqlite3 Database on `dbPath` (busy timeout applied); print results
 * with console.log. The database is closed after `body` finishes.
 */
export function runBetterSqlite(dbPath: string, body: string, opts: SqliteRunOptions = {}): Promise<ChildResult> {
  const modulePath = requireHere.resolve('better-sqlite3');
  const script = [
    'import { createRequire } from "node:module";',
    'const require = createRequire(import.meta.url);',
    `const Database = require(${JSON.stringify(modulePath)});`,
    `const db = new Database(process.argv[1], { timeout: ${opts.busyTimeoutMs ?? 0} });`,
    'try {',
    body,
    '} finally { db.close(); }',
  ].join('\n');
  return runProcess(process.execPath, ['--input-type=module', '-e', script, dbPath], opts);
}
