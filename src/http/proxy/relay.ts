import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { downstreamResponseHeaders, type HeaderRecord } from './headers.js';
import { isConnectionRefused, isStaleConnection, pause } from './retry.js';

export interface RelayRequest {
  dispatcher: Dispatcher;
  /**
   * The upstream origin (`http://host:port`), read before every attempt so a
   * retry follows a primary change; null means "none right now" and is
   * retried like a refused connection.
   */
  origin: () => string | null;
  method: string;
  /** Origin-form target, `/path?query`. */
  path: string;
  /** Flat name/value pairs, already rewritten for this hop. */
  headers: string[];
  req: IncomingMessage;
  res: ServerResponse;
  /** The client sends a body (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
  /** Aborts when the client goes away or the proxy shuts down. */
  signal: AbortSignal;
  /** Refused connections are retried until this time (Date.now() ms). */
  retryDeadline: number;
  retryIntervalMs: number;
  /** Called when upstream response headers arrive; a returned string is added as a Set-Cookie. */
  setCookie?: (statusCode: number) => string | null;
  /** Called before each retry of a refused connection. */
  onRetry?: (attempt: number, err: unknown, origin: string | null) => void;
}

export type RelayOutcome =
  /** The upstream response was relayed to the end. */
  | { kind: 'done' }
  /** The client (or shutdown) aborted first. */
  | { kind: 'aborted' }
  /** No origin became available before the deadline. */
  | { kind: 'unavailable' }
  /** The upstream failed; `responded` means headers were already sent and the client connection was cut. */
  | { kind: 'failed'; error: unknown; responded: boolean };

type Attempt = RelayOutcome | { kind: 'retryable'; error: unknown };

const IDEMPOTENT_BODILESS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Sends one proxied request through undici and streams the response into
 * `res` as it arrives: each chunk is written at once (Node sends it without
 * buffering) and the upstream socket is paused while `res` is full.
 * The request body is streamed too, and read lazily, so that an attempt
 * whose connection is refused has consumed nothing and can be retried.
 */
export async function relay(r: RelayRequest): Promise<RelayOutcome> {
  let bodyStarted = false;
  const makeBody = (): Readable | null => {
    if (!r.hasBody) return null;
    const source = r.req;
    // destroyOnReturn: false keeps the client connection usable if the
    // upstream stops reading early; Node drains the rest after our answer.
    async function* lazy(): AsyncGenerator<Buffer> {
      bodyStarted = true;
      for await (const chunk of source.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
    }
    return Readable.from(lazy(), { objectMode: false, highWaterMark: 64 * 1024 });
  };

  let staleRetried = false;
  for (let attempt = 1; ; attempt++) {
    if (r.signal.aborted) return { kind: 'aborted' };
    const origin = r.origin();
    const result: Attempt = origin === null ? { kind: 'retryable', error: null } : await attemptOnce(r, origin, makeBody());
    if (result.kind !== 'retryable') return result;
    if (r.signal.aborted) return { kind: 'aborted' };
    const err = result.error;
    if (origin !== null && !bodyStarted && !r.hasBody && !staleRetried && IDEMPOTENT_BODILESS.has(r.method) && isStaleConnection(err)) {
      staleRetried = true;
      continue;
    }
    const refused = origin === null || (!bodyStarted && isConnectionRefused(err));
    if (!refused) return { kind: 'failed', error: err, responded: false };
    if (Date.now() + r.retryIntervalMs > r.retryDeadline) {
      return origin === null ? { kind: 'unavailable' } : { kind: 'failed', error: err, responded: false };
    }
    r.onRetry?.(attempt, err, origin);
    if (!(await pause(r.retryIntervalMs, r.signal))) return { kind: 'aborted' };
  }
}

function attemptOnce(r: RelayRequest, origin: string, body: Readable | null): Promise<Attempt> {
  return new Promise<Attempt>((settle) => {
    const handler = new RelayHandler(r, settle);
    try {
      r.dispatcher.dispatch(
        {
          origin,
          path: r.path,
          method: r.method as Dispatcher.HttpMethod,
          headers: r.headers,
          body,
          // Long polls and event streams may sit silent for minutes; the
          // client's disconnect is what ends them.
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        handler,
      );
    } catch (err) {
      handler.fail(err);
    }
  });
}

class RelayHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private responded = false;
  private wroteBody = false;
  private settled = false;
  private readonly onAbort = (): void => {
    this.controller?.abort(abortReason(this.r.signal));
  };
  private readonly onDrain = (): void => {
    this.controller?.resume();
  };

  constructor(
    private readonly r: RelayRequest,
    private readonly settle: (a: Attempt) => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.r.signal.aborted) {
      controller.abort(abortReason(this.r.signal));
      return;
    }
    this.r.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderRecord, statusMessage?: string): void {
    const res = this.r.res;
    const out = downstreamResponseHeaders(headers);
    const cookie = this.r.setCookie?.(statusCode) ?? null;
    if (cookie !== null) {
      const prior = out['set-cookie'];
      out['set-cookie'] = prior === undefined ? cookie : Array.isArray(prior) ? [...prior, cookie] : [prior, cookie];
    }
    if (statusMessage !== undefined && statusMessage !== '') res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
    this.responded = true;
    res.on('drain', this.onDrain);
    // A response whose body follows later (event streams, long polls) must
    // show its headers now; one whose body came in the same read is
    // already written by then and pays nothing.
    setImmediate(() => {
      if (!this.wroteBody && !res.writableEnded && !res.destroyed) res.flushHeaders();
    });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.wroteBody = true;
    if (!this.r.res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.cleanup();
    this.r.res.end();
    this.finish({ kind: 'done' });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.fail(err);
  }

  fail(err: unknown): void {
    this.cleanup();
    if (this.r.signal.aborted) {
      if (!this.r.res.destroyed && this.responded) this.r.res.destroy();
      this.finish({ kind: 'aborted' });
    } else if (this.responded) {
      // Headers are out: truncating the response is the only way to say so.
      this.r.res.destroy();
      this.finish({ kind: 'failed', error: err, responded: true });
    } else {
      this.finish({ kind: 'retryable', error: err });
    }
  }

  private cleanup(): void {
    this.r.signal.removeEventListener('abort', this.onAbort);
    this.r.res.off('drain', this.onDrain);
  }

  private finish(a: Attempt): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(a);
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('client went away');
}
