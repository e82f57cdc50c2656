/**
 * The HTTP proxy (proxy.* in litefs.yml): fronts the app on this node and,
 * unlike LiteFS's (which answers writes on a replica with Fly's
 * `fly-replay` header), really forwards writes to the primary node's proxy,
 * so it works on any host.
 *
 * Routing, in order (LiteFS's order):
 * 1. proxy.passthrough path → local app, no cookie logic.
 * 2. GET/HEAD /litefs/health → 200 "OK", or 503 when lag > proxy.max-lag.
 * 3. GET/HEAD not on a proxy.always-forward path and without the hop
 *    header → read: with a newer `__txid` cookie, wait for this node's
 *    TXID (event-driven, bounded, 504 "Proxy timeout"), then local app.
 * 4. Anything else is a write: wait up to primary-redirect-timeout for a
 *    known primary (503 if none); on the primary → local app plus
 *    `Set-Cookie: __txid=<TXID when the app's response headers arrive>`;
 *    on a replica → the primary's proxy with `Litefs-Proxy-Hop: 1`; a
 *    request already carrying that header at a non-primary gets 503.
 *
 * Upgrade requests (WebSocket) follow the same rules, so an Upgrade GET is
 * a read and stays on this node; list WebSocket routes that write in
 * proxy.always-forward to tunnel them to the primary. Bodies stream both
 * ways; refused connections are retried (local app: 30 s by default, the
 * primary: up to primary-redirect-timeout); other failures are 502.
 * Outbound HTTP uses undici (a Pool for the app, an Agent for other
 * nodes); Upgrade requests use node:http (see upgrade.ts for why).
 */
export type { ProxyBackend } from './backend.js';
export { primaryProxyURLFor } from './backend.js';
export { createProxyServer, PROXY_DEFAULTS } from './server.js';
export { HEALTH_PATH } from './router.js';
export type { ProxyServer, ProxyServerOptions, ProxyStats } from './server.js';
export { ProxyError, isProxyError } from './errors.js';
export type { ProxyErrorCode } from './errors.js';
export { TXIDWaiters, ConditionWaiters } from './waiters.js';
export { TXID_COOKIE_NAME, DEFAULT_TXID_COOKIE_EXPIRY_MS, readTXIDCookie, formatTXIDCookie, formatTXIDHex } from './cookie.js';
export type { TXIDCookie } from './cookie.js';
export { HOP_HEADER, upstreamRequestHeaders, downstreamResponseHeaders, rawResponseHeaders } from './headers.js';
export type { UpstreamHeaderOptions, HeaderRecord } from './headers.js';
export { compilePathPattern, PathMatcher, requestPath, originForm } from './paths.js';
export { serverTimeouts } from './timeouts.js';
export type { ServerTimeouts } from './timeouts.js';
