import { constants } from 'node:os';
import { CodedError } from '../internal/index.js';

/** Linux errno numbers by name (ENOENT → 2, ...), as the kernel expects them. */
export const Errno: Readonly<Record<string, number>> = constants.errno;

/** The errno names Node knows on this platform. */
export type ErrnoName = keyof typeof constants.errno;

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK) keep the first name.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The symbolic name of an errno number, or `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * Thrown by a filesystem handler to answer a request with a specific errno.
 * `new FuseErrno('ENOENT')` and `new FuseErrno(2)` are equivalent.
 */
export class FuseErrno extends CodedError {
  readonly errno: number;

  constructor(errno: ErrnoName | number, message?: string, options?: { cause?: unknown }) {
    const value = typeof errno === 'number' ? errno : constants.errno[errno];
    if (!Number.isInteger(value) || value <= 0 || value > 4095) {
      throw new RangeError(`FuseErrno: errno must be a positive errno number, got ${String(errno)}`);
    }
    super('ERR_FUSE_ERRNO', message ?? errnoName(value), options);
    this.errno = value;
  }
}

/** Why a mount or unmount could not be done. */
export type FuseMountErrorCode =
  | 'ERR_FUSE_NO_DEVICE'
  | 'ERR_FUSE_DEVICE_DENIED'
  | 'ERR_FUSE_NOT_ROOT'
  | 'ERR_FUSE_MOUNTPOINT_MISSING'
  | 'ERR_FUSE_MOUNTPOINT_NOT_DIR'
  | 'ERR_FUSE_ALREADY_MOUNTED'
  /** A FUSE mount at the path whose daemon is attached but does not answer. */
  | 'ERR_FUSE_MOUNT_UNRESPONSIVE'
  | 'ERR_FUSE_STALE_MOUNT'
  | 'ERR_FUSE_MOUNT_FAILED'
  | 'ERR_FUSE_UNMOUNT_FAILED'
  | 'ERR_FUSE_INIT_FAILED'
  | 'ERR_FUSE_BAD_OPTION';

export class FuseMountError extends CodedError<FuseMountErrorCode> {}

/** A kernel message that cannot be decoded (truncated, inconsistent lengths, ...). */
export class FuseProtocolError extends CodedError {
  /** The request's unique id when the header itself was readable, so it can still be answered. */
  readonly unique: bigint | undefined;
  readonly opcode: number | undefined;

  constructor(message: string, where: { unique?: bigint; opcode?: number } = {}) {
    super('ERR_FUSE_MALFORMED_MESSAGE', message);
    this.unique = where.unique;
    this.opcode = where.opcode;
  }
}

/** An operation on a session that has not started or has already ended. */
export class FuseSessionError extends CodedError {
  constructor(
    code: 'ERR_FUSE_SESSION_CLOSED' | 'ERR_FUSE_NOT_INITIALIZED' | 'ERR_FUSE_NOTIFY_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * The errno a thrown value should be answered with, or undefined when the
 * value carries none (the caller then answers EIO and logs it). Node's own
 * system errors (`err.code === 'ENOENT'`) count as typed: a passthrough
 * filesystem can let fs.promises errors propagate unchanged.
 */
export function errnoOf(err: unknown): number | undefined {
  if (err instanceof FuseErrno) return err.errno;
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('E')) {
      const n = (constants.errno as Record<string, number | undefined>)[code];
      if (n !== undefined) return n;
    }
  }
  return undefined;
}
