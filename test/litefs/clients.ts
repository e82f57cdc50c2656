import { createRequire } from 'node:module';
import { spawnInteractive, type InteractiveChild } from '../helpers/processes.js';
import { runSqlite3 } from '../helpers/sqlite-clients.js';

/*
 * The three SQLite clients the proof uses, behind one small interface. The
 * sqlite3 CLI runs one process per call (a fresh connection each time, so
 * the connection-level settings are re-applied on every call); Python's
 * sqlite3 and better-sqlite3 keep one connection open in a long-lived child
 * and run one request per stdin line (so PERSIST and TRUNCATE journals are
 * reused across transactions as an application would).
 */

export type ClientKind = 'sqlite3' | 'python' | 'better-sqlite3';
export type JournalMode = 'delete' | 'truncate' | 'persist' | 'wal';

export interface SqlClient {
  readonly kind: ClientKind;
  /** Runs SQL (one or more statements); rejects with SQLite's message on error. */
  exec(sql: string): Promise<void>;
  /** Runs one query; rows as arrays of strings (NULL as ''). */
  query(sql: string): Promise<string[][]>;
  /** Connection settings applied before anything else (journal mode, synchronous). */
  setMode(mode: JournalMode, synchronous?: 'FULL' | 'NORMAL' | 'OFF'): Promise<void>;
  close(): Promise<void>;
}

const BUSY_MS = 10_000;

class CliClient implements SqlClient {
  readonly kind = 'sqlite3' as const;
  private prelude = '';

  constructor(private readonly dbPath: string) {}

  async setMode(mode: JournalMode, synchronous: 'FULL' | 'NORMAL' | 'OFF' = 'FULL'): Promise<void> {
    // `.output /dev/null` hides the pragma's echo of the mode.
    this.prelude = `.output /dev/null\nPRAGMA journal_mode=${mode};\nPRAGMA synchronous=${synchronous};\n.output stdout\n`;
    const rows = await this.query('PRAGMA journal_mode');
    if (rows[0]?.[0] !== mode) throw new Error(`sqlite3: journal_mode is ${JSON.stringify(rows)}, wanted ${mode}`);
  }

  async exec(sql: string): Promise<void> {
    const r = await runSqlite3(this.dbPath, this.prelude + sql, { busyTimeoutMs: BUSY_MS, timeoutMs: 120_000 });
    if (r.code !== 0 || r.stderr !== '') throw new Error(`sqlite3: ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  async query(sql: string): Promise<string[][]> {
    const r = await runSqlite3(this.dbPath, this.prelude + sql, { busyTimeoutMs: BUSY_MS, timeoutMs: 120_000 });
    if (r.code !== 0 || r.stderr !== '') throw new Error(`sqlite3: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout === ''
      ? []
      : r.stdout
          .replace(/\n$/, '')
          .split('\n')
          .map((l) => l.split('|'));
  }

  async close(): Promise<void> {}
}

/** Request/response over stdin/stdout lines of JSON. */
class LineClient implements SqlClient {
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;

  constructor(
    readonly kind: 'python' | 'better-sqlite3',
    private readonly child: InteractiveChild,
  ) {}

  private call(req: Record<string, unknown>): Promise<string[][]> {
    const run = async (): Promise<string[][]> => {
      const id = ++this.seq;
      this.child.writeLine(JSON.stringify({ ...req, id }));
      const line = await this.child.waitForLine(new RegExp(`^\\{"id": ?${id},`), 120_000);
      const res = JSON.parse(line) as { ok: boolean; rows?: unknown[][]; error?: string };
      if (!res.ok) throw new Error(`${this.kind}: ${res.error} (running ${JSON.stringify(req).slice(0, 200)})`);
      return (res.rows ?? []).map((r) => r.map((v) => (v === null ? '' : String(v))));
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async setMode(mode: JournalMode, synchronous: 'FULL' | 'NORMAL' | 'OFF' = 'FULL'): Promise<void> {
    const rows = await this.call({ query: `PRAGMA journal_mode=${mode}` });
    if (rows[0]?.[0] !== mode) throw new Error(`${this.kind}: journal_mode is ${JSON.stringify(rows)}, wanted ${mode}`);
    await this.call({ exec: `PRAGMA synchronous=${synchronous}` });
  }

  async exec(sql: string): Promise<void> {
    await this.call({ exec: sql });
  }

  query(sql: string): Promise<string[][]> {
    return this.call({ query: sql });
  }

  async close(): Promise<void> {
    this.child.end();
    const r = await this.child.exited;
    if (r.code !== 0) throw new Error(`${this.kind} client exited with ${r.code} ${r.signal}: ${r.stderr}`);
  }
}

const PYTHON_SERVER = `
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=${BUSY_MS / 1000}, isolation_level=None)
for line in sys.stdin:
    req = json.loads(line)
    try:
        if 'exec' in req:
            db.executescript(req['exec'])
            rows = []
        else:
            rows = [list(r) for r in db.execute(req['query']).fetchall()]
        out = {'id': req['id'], 'ok': True, 'rows': rows}
    except Exception as e:
        out = {'id': req['id'], 'ok': False, 'error': str(e)}
    sys.stdout.write(json.dumps(out, default=str) + '\\n')
    sys.stdout.flush()
db.close()
`;

const requireHere = createRequire(import.meta.url);

function betterSqliteServer(): string {
  return `
import { createRequire } from 'node:module';
import readline from 'node:readline';
const require = createRequire(import.meta.url);
const Database = require(${JSON.stringify(requireHere.resolve('better-sqlite3'))});
const db = new Database(process.argv[1], { timeout: ${BUSY_MS} });
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const req = JSON.parse(line);
  let out;
  try {
    const rows = 'exec' in req ? (db.exec(req.exec), []) : db.prepare(req.query).raw().all();
    out = { id: req.id, ok: true, rows: rows.map((r) => r.map((v) => (typeof v === 'bigint' || Buffer.isBuffer(v) ? String(v) : v))) };
  } catch (e) {
    out = { id: req.id, ok: false, error: String(e && e.message) };
  }
  process.stdout.write(JSON.stringify(out) + '\\n');
}
db.close();
`;
}

/** Opens a client of `kind` on `dbPath` (a file in the mount). */
export function openClient(kind: ClientKind, dbPath: string): SqlClient {
  switch (kind) {
    case 'sqlite3':
      return new CliClient(dbPath);
    case 'python':
      return new LineClient('python', spawnInteractive('python3', ['-u', '-c', PYTHON_SERVER, dbPath], { timeoutMs: 600_000 }));
    case 'better-sqlite3':
      return new LineClient(
        'better-sqlite3',
        spawnInteractive(process.execPath, ['--input-type=module', '-e', betterSqliteServer(), dbPath], { timeoutMs: 600_000 }),
      );
  }
}

export const CLIENT_KINDS: readonly ClientKind[] = ['sqlite3', 'python', 'better-sqlite3'];
export const JOURNAL_MODES: readonly JournalMode[] = ['delete', 'truncate', 'persist', 'wal'];
