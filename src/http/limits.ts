/**
 * What one client may cost the node API: header sizes, how long it may
 * take to speak, how many streams it may open. Small enough that a client
 * without the token cannot make the node hold more than a few KiB for it.
 */
export const API_LIMITS = {
  /** Request headers, HTTP/1 and HTTP/2 alike (a bearer token fits many times over). */
  maxHeaderBytes: 8 * 1024,
  maxHeaderPairs: 64,
  /** Concurrent HTTP/2 streams per connection (a replica needs one; the CLI one at a time). */
  maxConcurrentStreams: 16,
  /** From accepting a connection to its first bytes. */
  firstBytesTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  /** From a request's first byte to the end of its headers (HTTP/1). */
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 30_000,
  /** An HTTP/2 connection with no open stream and no frames for this long is closed. */
  idleTimeoutMs: 120_000,
  /** After a 401 on HTTP/1: how long, and how many body bytes, before the connection is cut. */
  lingerMs: 2_000,
  lingerBytes: 256 * 1024,
} as const;

/** A TLS handshake record (content type 22, version major 3) opens every TLS connection. */
export function isTLSClientHello(head: Buffer): boolean {
  return head.length >= 1 && head[0] === 0x16 && (head.length < 2 || head[1] === 0x03);
}

const TLS_REQUIRED = "this node's API speaks TLS only: use an https:// URL";

/** What an HTTP/1 client on the TLS port reads before the connection closes. */
export function plaintextRefusal(): string {
  const body = `${JSON.stringify({ error: TLS_REQUIRED, code: 'ERR_AUTH_TLS_REQUIRED' })}\n`;
  return `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * What an HTTP/2 prior-knowledge client (a replica dialling http:// a TLS
 * primary) reads: an empty SETTINGS frame, which a server's preface must
 * be, then GOAWAY with INADEQUATE_SECURITY and the reason as debug data.
 */
export function h2Refusal(): Buffer {
  const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
  const debug = Buffer.from(TLS_REQUIRED);
  const goaway = Buffer.alloc(9 + 8 + debug.length);
  goaway.writeUIntBE(8 + debug.length, 0, 3);
  goaway[3] = 0x7;
  goaway.writeUInt32BE(0, 9); // last stream ID
  goaway.writeUInt32BE(0xc, 13); // INADEQUATE_SECURITY
  debug.copy(goaway, 17);
  return Buffer.concat([settings, goaway]);
}
