/**
 * How a name in the mount's flat root maps to a LiteFS file. Everything
 * that is not a reserved dot-file or a suffixed auxiliary file names a
 * database, as in LiteFS; names that could never be a SQLite file we serve
 * (path separators, NUL, leading dot, over-long) are refused up front so
 * that a stray editor temp file or `mkdir` gets a clear errno instead of
 * becoming a "database".
 */
export type FileKind = 'database' | 'journal' | 'wal' | 'shm' | 'pos' | 'lock';

export type ParsedName = { kind: 'primary' } | { kind: 'lag' } | { kind: FileKind; db: string };

const SUFFIXES: ReadonlyArray<readonly [string, FileKind]> = [
  ['-journal', 'journal'],
  ['-wal', 'wal'],
  ['-shm', 'shm'],
  ['-pos', 'pos'],
  ['-lock', 'lock'],
];

/** Longest database name accepted; leaves room for suffixes within NAME_MAX. */
export const MAX_DB_NAME_LENGTH = 200;

/** Why a database name is unacceptable, or null when it is fine. */
export function invalidDatabaseName(name: string): string | null {
  if (name.length === 0) return 'empty name';
  if (Buffer.byteLength(name) > MAX_DB_NAME_LENGTH) return `name longer than ${MAX_DB_NAME_LENGTH} bytes`;
  if (name.includes('/') || name.includes('\0')) return 'name contains "/" or NUL';
  if (name.startsWith('.')) return 'names starting with "." are reserved';
  if (name === '..' || name === '.') return 'reserved name';
  return null;
}

/** Parses a name in the mount root; null when it can never exist there. */
export function parseName(name: string): ParsedName | null {
  if (name === '.primary') return { kind: 'primary' };
  if (name === '.lag') return { kind: 'lag' };
  for (const [suffix, kind] of SUFFIXES) {
    if (name.endsWith(suffix) && name.length > suffix.length) {
      const db = name.slice(0, -suffix.length);
      return invalidDatabaseName(db) === null ? { kind, db } : null;
    }
  }
  return invalidDatabaseName(name) === null ? { kind: 'database', db: name } : null;
}

export function fileName(db: string, kind: FileKind): string {
  switch (kind) {
    case 'database':
      return db;
    case 'journal':
      return `${db}-journal`;
    case 'wal':
      return `${db}-wal`;
    case 'shm':
      return `${db}-shm`;
    case 'pos':
      return `${db}-pos`;
    case 'lock':
      return `${db}-lock`;
  }
}
