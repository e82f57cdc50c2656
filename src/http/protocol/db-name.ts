import { StreamError } from './errors.js';

/**
 * Longest database name accepted on the wire, in UTF-8 bytes. A database is a
 * file in the mount's flat root directory, so its name is bounded by Linux's
 * NAME_MAX (255). LiteFS itself has no explicit limit; any name a LiteFS
 * primary can actually serve fits.
 */
export const MAX_DATABASE_NAME_BYTES = 255;

// With the u flag a valid surrogate pair is one code point, so only lone
// surrogates match.
const LONE_SURROGATE = /\p{Cs}/u;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Throws ERR_STREAM_BAD_NAME unless `name` can name a file in the mount root. */
export function validateDatabaseName(name: string): void {
  if (name.length === 0) throw new StreamError('ERR_STREAM_BAD_NAME', 'database name is empty');
  if (name === '.' || name === '..') {
    throw new StreamError('ERR_STREAM_BAD_NAME', `database name ${JSON.stringify(name)} is reserved`);
  }
  if (name.includes('/')) {
    throw new StreamError('ERR_STREAM_BAD_NAME', `database name ${JSON.stringify(name)} contains '/'`);
  }
  if (name.includes('\0')) {
    throw new StreamError('ERR_STREAM_BAD_NAME', `database name ${JSON.stringify(name)} contains NUL`);
  }
  // Lone surrogates would be replaced by U+FFFD on encoding, silently
  // renaming the database on the other side.
  if (LONE_SURROGATE.test(name)) {
    throw new StreamError('ERR_STREAM_BAD_NAME', `database name ${JSON.stringify(name)} is not well-formed Unicode`);
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_DATABASE_NAME_BYTES) {
    throw new StreamError('ERR_STREAM_FIELD_TOO_LONG', `database name is ${bytes} bytes, limit ${MAX_DATABASE_NAME_BYTES}`);
  }
}

/** Encodes a validated database name to UTF-8. */
export function encodeDatabaseName(name: string): Buffer {
  validateDatabaseName(name);
  return Buffer.from(name, 'utf8');
}

/** Decodes and validates a database name received on the wire. */
export function decodeDatabaseName(bytes: Uint8Array): string {
  let name: string;
  try {
    name = fatalUtf8.decode(bytes);
  } catch (err) {
    throw new StreamError(
      'ERR_STREAM_BAD_NAME',
      `database name bytes ${Buffer.from(bytes.subarray(0, 32)).toString('hex')} are not valid UTF-8`,
      { cause: err },
    );
  }
  validateDatabaseName(name);
  return name;
}
