import { FuseErrno } from '../fuse/index.js';
import { describeError } from '../internal/index.js';
import { StoreError } from '../store/index.js';

/**
 * The errno a client sees for a store error. EACCES for writes on a replica
 * is what makes SQLite report SQLITE_READONLY; anything unexpected is EIO,
 * which the FUSE session logs.
 */
export function toFuseError(err: unknown): unknown {
  if (err instanceof FuseErrno) return err;
  if (err instanceof StoreError) {
    switch (err.code) {
      case 'ERR_STORE_READONLY':
        return new FuseErrno('EACCES', err.message, { cause: err });
      case 'ERR_STORE_INVALID_WRITE':
        return new FuseErrno('EINVAL', err.message, { cause: err });
      case 'ERR_STORE_UNSUPPORTED':
        return new FuseErrno('EOPNOTSUPP', err.message, { cause: err });
      case 'ERR_STORE_DB_NOT_FOUND':
        return new FuseErrno('ENOENT', err.message, { cause: err });
      case 'ERR_STORE_INVALID_NAME':
        return new FuseErrno('EPERM', err.message, { cause: err });
      default:
        return new FuseErrno('EIO', describeError(err), { cause: err });
    }
  }
  return err;
}
