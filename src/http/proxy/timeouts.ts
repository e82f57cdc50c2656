import type { ProxyConfig } from '../../config/index.js';

/** Node http.Server settings equivalent to LiteFS's Go http.Server timeouts. */
export interface ServerTimeouts {
  /** Whole request (headers and body) must arrive within this; 0 = no limit. Go ReadTimeout. */
  requestTimeout: number;
  /** Request headers must arrive within this; 0 = no limit. Go ReadHeaderTimeout. */
  headersTimeout: number;
  /** Idle keep-alive connections close after this; 0 = never. Go IdleTimeout. */
  keepAliveTimeout: number;
  /** How often Node checks the two limits above (its default, 30 s, would make a 1 s limit fire up to 30 s late). */
  connectionsCheckingInterval: number;
  /** The response must be written within this after the request headers; 0 = no limit. Go WriteTimeout. */
  writeTimeout: number;
}

/**
 * Maps proxy.read-timeout, read-header-timeout, write-timeout and
 * idle-timeout the way Go's http.Server reads them: a zero header or idle
 * timeout falls back to the read timeout; zero everywhere means no limit.
 * Node refuses a header timeout above the request timeout, so it is capped.
 */
export function serverTimeouts(
  cfg: Pick<ProxyConfig, 'readTimeoutMs' | 'readHeaderTimeoutMs' | 'writeTimeoutMs' | 'idleTimeoutMs'>,
): ServerTimeouts {
  const requestTimeout = Math.max(0, cfg.readTimeoutMs);
  let headersTimeout = cfg.readHeaderTimeoutMs > 0 ? cfg.readHeaderTimeoutMs : requestTimeout;
  if (requestTimeout > 0 && headersTimeout > requestTimeout) headersTimeout = requestTimeout;
  const keepAliveTimeout = cfg.idleTimeoutMs > 0 ? cfg.idleTimeoutMs : requestTimeout;
  const limits = [headersTimeout, requestTimeout].filter((t) => t > 0);
  const connectionsCheckingInterval = limits.length === 0 ? 30_000 : Math.min(30_000, Math.max(50, Math.floor(Math.min(...limits) / 4)));
  return { requestTimeout, headersTimeout, keepAliveTimeout, connectionsCheckingInterval, writeTimeout: Math.max(0, cfg.writeTimeoutMs) };
}
