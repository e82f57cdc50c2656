import http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { request } from 'undici';

/** Lines of a streaming response body, taken one at a time as they arrive. */
export class LineReader {
  private readonly lines: string[] = [];
  private partial = '';
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly body: Readable) {
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      this.notify();
    });
    body.on('end', () => {
      this.ended = true;
      this.notify();
    });
    body.on('error', (err) => {
      this.failure = err;
      this.notify();
    });
    body.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  /** Lines received so far and not yet taken. */
  get pending(): number {
    return this.lines.length;
  }

  /** The next line; rejects on timeout, and resolves null once the body has ended. */
  async next(timeoutMs = 10_000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.failure !== null) throw this.failure;
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event line within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** The next `n` lines parsed as JSON. */
  async take(n: number, timeoutMs = 10_000): Promise<unknown[]> {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const line = await this.next(timeoutMs);
      if (line === null) throw new Error(`the stream ended after ${i} of ${n} lines`);
      out.push(JSON.parse(line));
    }
    return out;
  }

  private notify(): void {
    this.wake?.();
  }
}

export interface EventStream {
  reader: LineReader;
  status: number;
  contentType: string;
  close(): Promise<void>;
}

/** GET /events over HTTP/1.1 (undici). */
export async function events1(baseURL: string): Promise<EventStream> {
  const ac = new AbortController();
  const res = await request(`${baseURL}/events`, { signal: ac.signal, bodyTimeout: 0, headersTimeout: 10_000 });
  const reader = new LineReader(res.body);
  res.body.on('error', () => undefined);
  return {
    reader,
    status: res.statusCode,
    contentType: String(res.headers['content-type']),
    async close() {
      ac.abort();
      res.body.destroy();
    },
  };
}

export interface H2EventStream extends Omit<EventStream, 'reader'> {
  /** null when opened paused: nothing reads the body. */
  reader: LineReader | null;
  stream: http2.ClientHttp2Stream;
  session: http2.ClientHttp2Session;
}

/**
 * GET /events over h2c with prior knowledge. `initialWindowSize` is the
 * receive window this client grants; with `paused` the body is never read,
 * so a small window stops the server quickly (a subscriber that does not drain).
 */
export async function events2(baseURL: string, opts: { initialWindowSize?: number; paused?: boolean } = {}): Promise<H2EventStream> {
  const session = http2.connect(
    baseURL,
    opts.initialWindowSize === undefined ? {} : { settings: { initialWindowSize: opts.initialWindowSize } },
  );
  session.on('error', () => undefined);
  const stream = session.request({ ':method': 'GET', ':path': '/events' });
  stream.on('error', () => undefined);
  stream.end();
  const headers = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('error', reject);
  });
  return {
    reader: opts.paused === true ? null : new LineReader(stream),
    stream,
    session,
    status: Number(headers[':status']),
    contentType: String(headers['content-type']),
    async close() {
      stream.destroy();
      await new Promise<void>((resolve) => {
        if (session.closed || session.destroyed) resolve();
        else session.close(() => resolve());
      });
    },
  };
}
