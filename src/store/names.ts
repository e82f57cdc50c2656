/**
 * Which names a database may have. The mount shows each database next to
 * its auxiliary files (`<db>-journal`, `<db>-wal`, ...), so a database name
 * may not itself end in one of those suffixes, and names that could never
 * be a file in a flat directory (path separators, NUL, leading dot,
 * over-long) are refused before anything is created.
 */

/** Suffixes of the files that belong to a database in the mount. */
export const AUXILIARY_SUFFIXES = ['-journal', '-wal', '-shm', '-pos', '-lock'] as const;

/** Longest database name accepted; leaves room for suffixes within NAME_MAX. */
export const MAX_DB_NAME_LENGTH = 200;

/** Why a database name is unacceptable, or null when it is fine. */
export function invalidDatabaseName(name: string): string | null {
  if (name.length === 0) return 'empty name';
  if (Buffer.byteLength(name) > MAX_DB_NAME_LENGTH) return `name longer than ${MAX_DB_NAME_LENGTH} bytes`;
  if (name.includes('/') || name.includes('\0')) return 'name contains "/" or NUL';
  if (name.startsWith('.')) return 'names starting with "." are reserved';
  const suffix = AUXILIARY_SUFFIXES.find((s) => name.endsWith(s));
  if (suffix !== undefined) return `it ends in the reserved suffix ${suffix} (${AUXILIARY_SUFFIXES.join(', ')})`;
  return null;
}
