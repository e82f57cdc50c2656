import { CodedError } from '../../internal/index.js';

/**
 * Every way a `/stream` request body or response stream can be malformed.
 * Callers branch on these (e.g. treat ERR_STREAM_SOURCE as a network blip
 * and ERR_STREAM_UNKNOWN_FRAME as a protocol mismatch) rather than on text.
 */
export type StreamErrorCode =
  /** The byte source ended inside a frame, a field or a chunk stream. */
  | 'ERR_STREAM_TRUNCATED'
  /** A frame type this implementation does not know. */
  | 'ERR_STREAM_UNKNOWN_FRAME'
  /** Printable text where a frame type was expected: LiteFS writes error text into the stream after a 200. */
  | 'ERR_STREAM_SERVER_TEXT'
  /** A database name that is empty, not UTF-8, or contains '/' or NUL, or is '.' or '..'. */
  | 'ERR_STREAM_BAD_NAME'
  /** A length-prefixed field longer than its limit (names, lease IDs). */
  | 'ERR_STREAM_FIELD_TOO_LONG'
  /** A position map with more entries than allowed. */
  | 'ERR_STREAM_TOO_MANY_ENTRIES'
  /** The same database twice in one position map. */
  | 'ERR_STREAM_DUPLICATE_NAME'
  /** Bytes after the end of a position map. */
  | 'ERR_STREAM_TRAILING_DATA'
  /** A 64-bit field outside its range (negative TXID, ...). */
  | 'ERR_STREAM_BAD_VALUE'
  /** `next()` called while an LTX body is still unread. */
  | 'ERR_STREAM_BODY_PENDING'
  /** An LTX body longer than the reader's limit or than its declared size. */
  | 'ERR_STREAM_BODY_TOO_LARGE'
  /** An LTX body shorter than its declared (non-zero) size. */
  | 'ERR_STREAM_SIZE_MISMATCH'
  /** The reader was aborted or closed. */
  | 'ERR_STREAM_ABORTED'
  /** The underlying byte source threw (socket reset, HTTP/2 stream error...). */
  | 'ERR_STREAM_SOURCE'
  /** The byte source produced something that is not bytes. */
  | 'ERR_STREAM_BAD_SOURCE'
  /** Caller misuse (body iterated twice, ...). */
  | 'ERR_STREAM_USAGE';

export class StreamError extends CodedError<StreamErrorCode> {}

/** True when `err` is a StreamError, optionally with the given code. */
export function isStreamError(err: unknown, code?: StreamErrorCode): err is StreamError {
  return err instanceof StreamError && (code === undefined || err.code === code);
}
