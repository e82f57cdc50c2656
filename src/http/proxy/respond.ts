import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * A plain-text answer from the proxy itself, shaped like Go's http.Error
 * (the message plus a newline, nosniff). If the response has already
 * started, the only honest signal left is to cut the connection.
 */
export function sendText(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The same on a raw socket (an Upgrade request the proxy will not tunnel), then closes it. */
export function sendRawText(socket: Duplex, status: number, message: string): void {
  if (socket.destroyed || socket.writableEnded) return;
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** One line, bounded, for a 502 body or a log field. */
export function oneLine(text: string, max = 300): string {
  const flat = text.replace(/[\r\n]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
