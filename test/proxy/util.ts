import net, { type AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../src/internal/log.js';

/** Polls `cond` every 10 ms; rejects after `timeoutMs` (bounded in time and count). */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const maxPolls = Math.ceil(timeoutMs / 10);
  for (let i = 0; i < maxPolls; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!cond()) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Rejects if `p` has not settled within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every record and emits 'record' for each. */
export class CaptureLogger extends EventEmitter implements Logger {
  readonly records: LogRecord[] = [];

  constructor(
    private readonly bindings: Record<string, unknown> = {},
    private readonly root?: CaptureLogger,
  ) {
    super();
  }

  private add(level: LogRecord['level'], a: object | string, b?: string): void {
    const rec: LogRecord =
      typeof a === 'string'
        ? { level, msg: a, fields: { ...this.bindings } }
        : { level, msg: b ?? '', fields: { ...this.bindings, ...(a as Record<string, unknown>) } };
    const root = this.root ?? this;
    root.records.push(rec);
    root.emit('record', rec);
  }

  debug(a: object | string, b?: string): void {
    this.add('debug', a, b);
  }
  info(a: object | string, b?: string): void {
    this.add('info', a, b);
  }
  warn(a: object | string, b?: string): void {
    this.add('warn', a, b);
  }
  error(a: object | string, b?: string): void {
    this.add('error', a, b);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new CaptureLogger({ ...this.bindings, ...bindings }, this.root ?? this);
  }

  /** Resolves with the first record (already logged or future) whose message includes `text`. */
  waitFor(text: string): Promise<LogRecord> {
    const hit = this.records.find((r) => r.msg.includes(text));
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve) => {
      const on = (r: LogRecord): void => {
        if (r.msg.includes(text)) {
          this.off('record', on);
          resolve(r);
        }
      };
      this.on('record', on);
    });
  }
}
