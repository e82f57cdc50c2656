import { invalidDatabaseName } from '../store/index.js';

/**
 * How a name in the mount's flat root maps to a LiteFS file. Everything
 * that is not a reserved dot-file or a suffixed auxiliary file names a
 * database, as in LiteFS; names the store would refuse as a database
 * (store/names.ts) are refused up front so that a stray editor temp file
 * or `mkdir` gets a clear errno instead of becoming a "database".
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
