import { pino } from 'pino';

/**
 * The logging surface every module depends on. It is the subset of pino's
 * API we use, so library code (ltx, fuse) can be handed a pino logger, a
 * child of one, or `silentLogger` in tests without depending on pino itself.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  debug(msg: string): void;
  info(obj: object, msg?: string): void;
  info(msg: string): void;
  warn(obj: object, msg?: string): void;
  warn(msg: string): void;
  error(obj: object, msg?: string): void;
  error(msg: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LoggerOptions {
  level?: LogLevel;
  /** Defaults to stderr so stdout stays free for command output. */
  fd?: number;
}

/**
 * Creates the process logger. Writes are asynchronous (sonic-boom) so a log
 * line never stalls the thread that answers FUSE requests; `flushLogger`
 * must run before a deliberate exit.
 */
export function createLogger(opts: LoggerOptions = {}): Logger & { flush(): void } {
  const dest = pino.destination({ fd: opts.fd ?? 2, sync: false });
  return pino(
    {
      level: opts.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
    },
    dest,
  );
}
