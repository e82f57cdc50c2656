import type { ChildOptions, Logger } from '../../internal/index.js';

/**
 * A copy of `obj` that any JSON logger can serialise: bigints become decimal
 * strings and byte buffers their length (WRITE data must never reach a log).
 * Two levels deep, which covers every decoded request body. Errors pass
 * through untouched for the logger's own serialiser.
 */
export function logSafe(obj: Record<string, unknown>, depth = 2): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = safeValue(v, depth);
  return out;
}

function safeValue(v: unknown, depth: number): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof Error) return v;
  if (Array.isArray(v)) return depth > 0 ? v.slice(0, 16).map((x) => safeValue(x, depth - 1)) : `<${v.length} items>`;
  if (typeof v === 'object' && v !== null) return depth > 0 ? logSafe(v as Record<string, unknown>, depth - 1) : '<object>';
  return v;
}

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * Wraps a logger so that logging can never break request handling: fields
 * go through logSafe, and a logger that throws (a serialiser choking on a
 * value, a closed destination) is ignored. A throw inside a /dev/fuse read
 * callback would otherwise be an uncaught exception in the daemon.
 */
export function safeLogger(inner: Logger): Logger {
  const call = (level: Level, a: object | string, msg?: string): void => {
    try {
      if (typeof a === 'string') inner[level](a);
      else inner[level](logSafe(a as Record<string, unknown>), msg);
    } catch {
      // Logging is best effort.
    }
  };
  return {
    debug: (a: object | string, msg?: string) => call('debug', a, msg),
    info: (a: object | string, msg?: string) => call('info', a, msg),
    warn: (a: object | string, msg?: string) => call('warn', a, msg),
    error: (a: object | string, msg?: string) => call('error', a, msg),
    child: (bindings: Record<string, unknown>, options?: ChildOptions) => safeLogger(inner.child(bindings, options)),
  } as Logger;
}
