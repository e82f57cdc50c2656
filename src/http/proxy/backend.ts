import type { PrimaryInfo } from '../../lease/index.js';
import { parseHostPort } from '../../config/index.js';

/**
 * What the proxy needs to know about this node. The store implements it; the
 * proxy never touches the store, lease or FUSE layers directly, so it can be
 * tested with an in-memory fake and reused by other front-ends.
 *
 * Waits are event-driven: the implementation resolves them from the code
 * path that changes the state (applying an LTX file, a lease change), never
 * by polling. Both wait methods must settle when `signal` aborts (with
 * `false` / undefined, not a rejection) and must drop their listeners then,
 * because the proxy aborts every wait whose client went away.
 */
export interface ProxyBackend {
  /** True while this node holds the primary lease. */
  isPrimary(): boolean;

  /**
   * Base URL (`http://host:port`, no path) of the primary node's proxy, or
   * null when no primary is known. Unused while `isPrimary()` is true.
   * See `primaryProxyURLFor` for the usual way to derive it.
   */
  primaryProxyURL(): string | null;

  /**
   * Resolves once a primary is known (`isPrimary()` or `primaryProxyURL()
   * !== null`), at once if one already is, or when `signal` aborts. Never
   * rejects; the caller re-reads the state afterwards.
   */
  waitForPrimary(signal: AbortSignal): Promise<void>;

  /** Current TXID of a local database; null when the database does not exist on this node. */
  txid(db: string): bigint | null;

  /**
   * Resolves true as soon as `txid(db) >= target` (at once if already so),
   * false when `signal` aborts first. A database that does not exist yet
   * counts as TXID 0 and is waited for. Never rejects.
   */
  waitForTXID(db: string, target: bigint, signal: AbortSignal): Promise<boolean>;

  /** Replication lag in milliseconds (time since the last applied frame from the primary); 0 on the primary. */
  lagMs(): number;
}

/**
 * The primary's proxy URL when every node listens on the same proxy port
 * (the usual deployment: one litefs.yml for the whole cluster). LiteFS's
 * PrimaryInfo only carries the primary's API URL (`lease.advertise-url`,
 * port 20202), so this takes that URL's host and this node's `proxy.addr`
 * port. Returns null when either cannot be parsed.
 */
export function primaryProxyURLFor(primary: PrimaryInfo, localProxyAddr: string): string | null {
  const listen = parseHostPort(localProxyAddr);
  if (listen === undefined || listen.port === 0) return null;
  let api: URL;
  try {
    api = new URL(primary.advertiseURL);
  } catch {
    return null;
  }
  if (api.protocol !== 'http:' && api.protocol !== 'https:') return null;
  if (api.hostname === '') return null;
  // URL.hostname keeps the brackets of an IPv6 literal. Proxies listen in
  // cleartext whatever the API does (http.tls covers the API only), so an
  // https:// API URL still means an http:// proxy.
  return `http://${api.hostname}:${listen.port}`;
}
