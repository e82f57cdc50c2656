import { CodedError } from '../../internal/index.js';

export type ProxyErrorCode =
  /** A proxy.* setting the proxy cannot run with (missing target, bad address, bad pattern). */
  | 'ERR_PROXY_INVALID_CONFIG'
  /** A constructor option out of range. */
  | 'ERR_PROXY_INVALID_OPTION'
  /** The listener could not bind proxy.addr. */
  | 'ERR_PROXY_LISTEN'
  /** address()/url() before listen(). */
  | 'ERR_PROXY_NOT_LISTENING'
  /** listen() twice. */
  | 'ERR_PROXY_ALREADY_LISTENING'
  /** listen() after close(). */
  | 'ERR_PROXY_CLOSED';

export class ProxyError extends CodedError<ProxyErrorCode> {}

/** True when `err` is a ProxyError, optionally with the given code. */
export function isProxyError(err: unknown, code?: ProxyErrorCode): err is ProxyError {
  return err instanceof ProxyError && (code === undefined || err.code === code);
}
