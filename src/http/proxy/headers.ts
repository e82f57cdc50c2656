/**
 * Header rewriting for one proxy hop (RFC 9110 §7.6.1): hop-by-hop fields,
 * and any field the Connection header names, apply to a single connection
 * and are never forwarded. Everything else, Host included, passes through.
 */

/**
 * Marks a request that a LiteFS proxy already forwarded to what it believed
 * was the primary. A node that is not the primary answers such a request
 * with 503 instead of forwarding it again, so a cluster whose nodes disagree
 * about the primary cannot bounce a request around forever.
 */
export const HOP_HEADER = 'litefs-proxy-hop';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Lowercase names listed in Connection header values. */
function connectionTokens(values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) {
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase();
      if (name !== '') out.add(name);
    }
  }
  return out;
}

/** True for fields that never cross a proxy (Proxy-* included). */
function isHopByHop(lower: string, named: Set<string> | null): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || (named !== null && named.has(lower));
}

function collectConnection(raw: readonly string[]): Set<string> | null {
  let values: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') (values ??= []).push(raw[i + 1]!);
  }
  return values === null ? null : connectionTokens(values);
}

export interface UpstreamHeaderOptions {
  /** The peer address of the client connection (X-Forwarded-For / Forwarded `for`). */
  clientAddress: string | undefined;
  /** Add the HOP_HEADER (the request goes to another node's proxy). */
  hop: boolean;
  /** For an Upgrade request: the Upgrade value to keep, with `Connection: Upgrade`. */
  upgrade?: string;
}

/** Forwarded `for=` node (RFC 7239 §6): IPv6 in brackets and quotes. */
function forwardedNode(addr: string | undefined): string {
  if (addr === undefined || addr === '') return 'unknown';
  return addr.includes(':') ? `"[${addr}]"` : addr;
}

/**
 * The header list (flat name/value pairs, as IncomingMessage.rawHeaders) to
 * send upstream: hop-by-hop fields removed, Expect removed (Node's server has
 * already answered `100-continue`), X-Forwarded-For and Forwarded extended
 * with this hop, the hop marker set or stripped, duplicate Host and
 * Content-Length collapsed to the first (undici rejects duplicates).
 */
export function upstreamRequestHeaders(raw: readonly string[], opts: UpstreamHeaderOptions): string[] {
  const named = collectConnection(raw);
  const out: string[] = [];
  let xff: string | null = null;
  let fwd: string | null = null;
  let host: string | null = null;
  let sawLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (isHopByHop(lower, named)) continue;
    switch (lower) {
      case 'expect':
      case HOP_HEADER:
        continue;
      case 'x-forwarded-for':
        xff = xff === null ? value : `${xff}, ${value}`;
        continue;
      case 'forwarded':
        fwd = fwd === null ? value : `${fwd}, ${value}`;
        continue;
      case 'host':
        if (host !== null) continue;
        host = value;
        break;
      case 'content-length':
        if (sawLength) continue;
        sawLength = true;
        break;
    }
    out.push(name, value);
  }
  const client = opts.clientAddress ?? 'unknown';
  out.push('X-Forwarded-For', xff === null ? client : `${xff}, ${client}`);
  let element = `for=${forwardedNode(opts.clientAddress)}`;
  if (host !== null) element += `;host="${host.replace(/["\\]/g, '')}"`;
  element += ';proto=http';
  out.push('Forwarded', fwd === null ? element : `${fwd}, ${element}`);
  if (opts.hop) out.push('Litefs-Proxy-Hop', '1');
  if (opts.upgrade !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', opts.upgrade);
  return out;
}

export type HeaderRecord = Record<string, string | string[] | undefined>;

/**
 * Response headers from undici (lowercase names, repeated fields as arrays)
 * without hop-by-hop fields, ready for ServerResponse.writeHead. Node's
 * server adds its own framing (Content-Length or chunked) and Connection.
 */
export function downstreamResponseHeaders(headers: HeaderRecord): Record<string, string | string[]> {
  const conn = headers['connection'];
  const named = conn === undefined ? null : connectionTokens(typeof conn === 'string' ? [conn] : conn);
  const out: Record<string, string | string[]> = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name, named)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * Raw response header pairs for a response the proxy writes by hand on a
 * raw socket (Upgrade requests). `keepUpgrade` keeps Connection/Upgrade for
 * a 101. Transfer-Encoding always goes: Node has already decoded the body,
 * which is re-sent as is (Content-Length kept) or close-delimited.
 */
export function rawResponseHeaders(raw: readonly string[], keepUpgrade: boolean): string[] {
  const named = keepUpgrade ? null : collectConnection(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (keepUpgrade) {
      if (lower === 'connection' || lower === 'upgrade') {
        out.push(raw[i]!, raw[i + 1]!);
        continue;
      }
    }
    if (isHopByHop(lower, named)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
