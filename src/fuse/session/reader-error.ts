import { CodedError } from '../../internal/index.js';

export type FuseReaderErrorCode =
  /** A reader thread died without saying why it stopped (uncaught exception, terminate(), out of memory). */
  | 'ERR_FUSE_READER_CRASHED'
  /** A reader thread could not be started. */
  | 'ERR_FUSE_READER_START_FAILED';

/** Why a session's reader thread stopped unexpectedly; `SessionEnd.error` when the session ended with reason 'error'. */
export class FuseReaderError extends CodedError<FuseReaderErrorCode> {}
