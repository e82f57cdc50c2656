/**
 * Just enough RFC 6455 to prove a WebSocket crosses the proxy: the opening
 * handshake and small single-frame text messages, both directions.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

export function encodeFrame(payload: Buffer, masked: boolean, opcode = 0x1): Buffer {
  const len = payload.length;
  if (len >= 65536) throw new Error('test frames stay below 64 KiB');
  const head =
    len < 126
      ? Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | len])
      : Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | 126, len >> 8, len & 0xff]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

export interface Frame {
  opcode: number;
  payload: Buffer;
}

/** Accumulates bytes and yields complete frames (unmasking client frames). */
export class FrameParser {
  private buf = Buffer.alloc(0);

  push(data: Buffer): Frame[] {
    this.buf = Buffer.concat([this.buf, data]);
    const out: Frame[] = [];
    for (let guard = 0; guard < 10_000; guard++) {
      if (this.buf.length < 2) break;
      const opcode = this.buf[0]! & 0x0f;
      const masked = (this.buf[1]! & 0x80) !== 0;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        throw new Error('64-bit frame lengths are not used in tests');
      }
      const need = off + (masked ? 4 : 0) + len;
      if (this.buf.length < need) break;
      let payload = Buffer.from(this.buf.subarray(off + (masked ? 4 : 0), need));
      if (masked) {
        const mask = this.buf.subarray(off, off + 4);
        payload = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
      }
      out.push({ opcode, payload });
      this.buf = this.buf.subarray(need);
    }
    return out;
  }
}

/** Server side: completes the handshake and answers each text message with transform(text). */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, transform: (text: string) => string): void {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
  );
  const parser = new FrameParser();
  const onData = (d: Buffer): void => {
    for (const f of parser.push(d)) {
      if (f.opcode === 0x1) socket.write(encodeFrame(Buffer.from(transform(f.payload.toString('utf8'))), false));
      else if (f.opcode === 0x8) socket.end(encodeFrame(f.payload, false, 0x8));
    }
  };
  socket.on('error', () => socket.destroy());
  // http.Server sockets are half-open capable: finish our side when the peer finishes.
  socket.on('end', () => socket.end());
  if (head.length > 0) onData(head);
  socket.on('data', onData);
}

export interface ClientSocket {
  status: number;
  /** The response head (status line and headers) as received. */
  head: string;
  socket: net.Socket;
  send(text: string): void;
  /** The next text message from the server. */
  next(): Promise<string>;
  /** Resolves when the TCP connection has closed. */
  closed: Promise<void>;
  /** Bytes after the head when the server did not switch protocols. */
  rest(): Promise<string>;
}

/** Client side: raw handshake over TCP to 127.0.0.1:port. */
export function openWebSocket(port: number, path: string, extraHeaders: Record<string, string> = {}): Promise<ClientSocket> {
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let buf = Buffer.alloc(0);
    const parser = new FrameParser();
    const messages: string[] = [];
    const waiting: ((t: string) => void)[] = [];
    const afterHead: Buffer[] = [];
    let status = 0;
    const deliver = (frames: Frame[]): void => {
      for (const f of frames) {
        if (f.opcode !== 0x1) continue;
        const t = f.payload.toString('utf8');
        const w = waiting.shift();
        if (w) w(t);
        else messages.push(t);
      }
    };
    const onHead = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 101) {
        if (!head.toLowerCase().includes(`sec-websocket-accept: ${acceptKey(key).toLowerCase()}`)) {
          reject(new Error(`bad Sec-WebSocket-Accept in ${JSON.stringify(head)}`));
          socket.destroy();
          return;
        }
        deliver(parser.push(rest));
        socket.on('data', (x: Buffer) => deliver(parser.push(x)));
      } else {
        afterHead.push(rest);
        socket.on('data', (x: Buffer) => afterHead.push(x));
      }
      resolve({
        status,
        head,
        socket,
        send: (text) => socket.write(encodeFrame(Buffer.from(text), true)),
        next: () => {
          const m = messages.shift();
          return m !== undefined ? Promise.resolve(m) : new Promise<string>((r) => waiting.push(r));
        },
        closed,
        rest: () => closed.then(() => Buffer.concat(afterHead).toString('utf8')),
      });
    };
    socket.on('data', onHead);
    socket.on('error', reject);
    const extra = Object.entries(extraHeaders)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
  });
}
