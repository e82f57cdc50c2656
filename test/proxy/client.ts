import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface SendOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
}

/** One request on a fresh connection, the whole reply buffered (tests only). */
export function send(baseURL: string, path: string, opts: SendOptions = {}): Promise<Reply> {
  const url = new URL(path, baseURL);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Starts a request and hands back the ClientRequest so the test controls the body and the connection. */
export function open(
  baseURL: string,
  path: string,
  opts: { method?: string; headers?: OutgoingHttpHeaders } = {},
): { req: http.ClientRequest; response: Promise<http.IncomingMessage> } {
  const url = new URL(path, baseURL);
  const req = http.request({
    host: url.hostname,
    port: url.port,
    path: `${url.pathname}${url.search}`,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    agent: false,
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  return { req, response };
}

export function bodyOf(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on('data', (d: Buffer) => parts.push(d));
    res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
  });
}

/** Cookie name=value pairs from Set-Cookie headers. */
export function setCookies(headers: IncomingHttpHeaders): string[] {
  return headers['set-cookie'] ?? [];
}
