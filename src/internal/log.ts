import { pino, type DestinationStream } from 'pino';

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
  /** `options.level` lets one component log more than the rest (`-fuse.debug`). */
  child(bindings: Record<string, unknown>, options?: ChildOptions): Logger;
}

export interface ChildOptions {
  level?: LogLevel;
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
  /** json (default): one JSON object per line; text: `level msg key=value…` for humans. */
  format?: 'json' | 'text';
  /** Prefix text lines with a timestamp (JSON lines always carry `time`). */
  timestamp?: boolean;
  /** Defaults to stderr so stdout stays free for command output. */
  fd?: number;
}

/**
 * Creates the process logger. Writes are asynchronous (sonic-boom) so a log
 * line never stalls the thread that answers FUSE requests; `flush` must run
 * before a deliberate exit.
 */
export function createLogger(opts: LoggerOptions = {}): Logger & { flush(): void } {
  const dest = pino.destination({ fd: opts.fd ?? 2, sync: false });
  const stream: DestinationStream = opts.format === 'text' ? new TextStream(dest, opts.timestamp ?? false) : dest;
  return pino(
    {
      level: opts.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
    },
    stream,
  );
}

/** Re-renders pino's JSON lines as `[time] LEVEL msg key=value …`. */
class TextStream implements DestinationStream {
  constructor(
    private readonly out: DestinationStream & { flushSync?(): void },
    private readonly withTime: boolean,
  ) {}

  write(line: string): void {
    this.out.write(formatText(line, this.withTime));
  }

  flushSync(): void {
    this.out.flushSync?.();
  }
}

export function formatText(line: string, withTime: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, ...rest } = rec;
  const parts: string[] = [];
  if (withTime && typeof time === 'string') parts.push(time);
  parts.push(
    String(level ?? 'info')
      .toUpperCase()
      .padEnd(5),
  );
  if (typeof msg === 'string') parts.push(msg);
  for (const [k, v] of Object.entries(rest)) parts.push(`${k}=${fieldText(v)}`);
  return `${parts.join(' ')}\n`;
}

function fieldText(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'object' && v !== null && 'message' in v) return JSON.stringify((v as { message: unknown }).message);
  return JSON.stringify(v);
}
