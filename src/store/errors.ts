import { CodedError } from '../internal/index.js';

export type StoreErrorCode =
  /** A write on a node that is not the primary. Surfaces as EACCES (SQLITE_READONLY). */
  | 'ERR_STORE_READONLY'
  /** A database write that is not whole, aligned pages, or a resize SQLite would never do. */
  | 'ERR_STORE_INVALID_WRITE'
  /** Something SQLite can do that litefs-ts does not support yet (WAL, journal_mode=OFF/MEMORY). */
  | 'ERR_STORE_UNSUPPORTED'
  | 'ERR_STORE_DB_NOT_FOUND'
  | 'ERR_STORE_INVALID_NAME'
  /** The database does not match its newest LTX file at startup. */
  | 'ERR_STORE_CHECKSUM_MISMATCH'
  /** An LTX file does not follow on from the database's position. */
  | 'ERR_STORE_POSITION_MISMATCH'
  /** A database file that is not SQLite, next to LTX history that says it should be. */
  | 'ERR_STORE_CORRUPT_DATABASE'
  | 'ERR_STORE_CORRUPT_LTX'
  /** Expired LTX files that could not be removed. */
  | 'ERR_STORE_RETENTION'
  /** Another process holds the data directory's lock. */
  | 'ERR_STORE_DATA_DIR_LOCKED'
  | 'ERR_STORE_CLOSED';

export class StoreError extends CodedError<StoreErrorCode> {}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}
