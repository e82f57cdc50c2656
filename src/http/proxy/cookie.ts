/** LiteFS's read-your-writes cookie: the TXID a client's last write produced. */
export const TXID_COOKIE_NAME = '__txid';

/** LiteFS's cookie lifetime. */
export const DEFAULT_TXID_COOKIE_EXPIRY_MS = 5 * 60 * 1000;

export type TXIDCookie =
  /** No `__txid` cookie (or TXID 0, which LiteFS treats the same). */
  | { kind: 'absent' }
  | { kind: 'txid'; txid: bigint }
  /** Present but not 16 hex digits; the request is served without waiting. */
  | { kind: 'malformed'; value: string };

const HEX16 = /^[0-9a-fA-F]{16}$/;

/**
 * Reads `__txid` from Cookie header value(s). The first occurrence wins, as
 * with Go's Request.Cookie; a value in double quotes is unquoted. The value
 * must be exactly 16 hex digits (ltx.ParseTXID), either case.
 */
export function readTXIDCookie(header: string | string[] | undefined): TXIDCookie {
  if (header === undefined) return { kind: 'absent' };
  const lines = typeof header === 'string' ? [header] : header;
  for (const line of lines) {
    // Cheap reject: most requests carry cookies, few carry ours.
    if (!line.includes(TXID_COOKIE_NAME)) continue;
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== TXID_COOKIE_NAME) continue;
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (!HEX16.test(value)) return { kind: 'malformed', value };
      const txid = BigInt(`0x${value}`);
      return txid === 0n ? { kind: 'absent' } : { kind: 'txid', txid };
    }
  }
  return { kind: 'absent' };
}

/** A TXID as ltx writes it: 16 lowercase hex digits. */
export function formatTXIDHex(txid: bigint): string {
  return txid.toString(16).padStart(16, '0');
}

/** The Set-Cookie value LiteFS sends after a write on the primary. */
export function formatTXIDCookie(txid: bigint, nowMs: number, expiryMs: number = DEFAULT_TXID_COOKIE_EXPIRY_MS): string {
  const expires = new Date(nowMs + expiryMs).toUTCString();
  return `${TXID_COOKIE_NAME}=${formatTXIDHex(txid)}; Path=/; HttpOnly; Expires=${expires}`;
}
