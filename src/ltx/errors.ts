import { CodedError } from '../internal/index.js';

/**
 * Stable codes for everything the LTX codec refuses. Callers (the store, the
 * stream client, the CLI) branch on these, so they never change meaning.
 */
export type LtxErrorCode =
  | 'ERR_LTX_BAD_MAGIC'
  | 'ERR_LTX_HEADER_INVALID'
  | 'ERR_LTX_TRAILER_INVALID'
  | 'ERR_LTX_PAGE_INVALID'
  | 'ERR_LTX_CHECKSUM_MISMATCH'
  | 'ERR_LTX_DB_CHECKSUM_MISMATCH'
  | 'ERR_LTX_TRUNCATED'
  | 'ERR_LTX_TRAILING_DATA'
  | 'ERR_LTX_LZ4'
  | 'ERR_LTX_STATE'
  | 'ERR_LTX_NOT_CONTIGUOUS'
  | 'ERR_LTX_PAGE_SIZE_MISMATCH'
  | 'ERR_LTX_DB_INVALID'
  | 'ERR_LTX_PARSE';

export interface LtxErrorDetails {
  /** The header/trailer field or the input that was refused. */
  field?: string;
  /** The offending value, as it would be printed. */
  value?: string | number | bigint;
  cause?: unknown;
}

export class LtxError extends CodedError<LtxErrorCode> {
  readonly field: string | undefined;
  readonly value: string | number | bigint | undefined;

  constructor(code: LtxErrorCode, message: string, details: LtxErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.field = details.field;
    this.value = details.value;
  }
}

export function isLtxError(err: unknown, code?: LtxErrorCode): err is LtxError {
  return err instanceof LtxError && (code === undefined || err.code === code);
}

/** 16-digit lowercase hex, the way every 64-bit value is printed in LTX land. */
export function hex64(v: bigint): string {
  return BigInt.asUintN(64, v).toString(16).padStart(16, '0');
}
