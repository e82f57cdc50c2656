import { CodedError } from '../../internal/index.js';

export type AuthErrorCode =
  /** A certificate, key or CA file named in http.tls cannot be read or parsed, or the key does not match. */
  | 'ERR_AUTH_TLS_FILES'
  /** A reload asked for what only a restart can change (TLS on or off, client-auth). */
  | 'ERR_AUTH_RELOAD';

export class AuthError extends CodedError<AuthErrorCode> {}
