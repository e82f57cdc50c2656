import { describeError, type Logger } from '../../internal/index.js';

/**
 * Logs each distinct unexpected failure once. A handler bug hit by every
 * request would otherwise flood the log at the request rate; the count of
 * repeats stays available through `total` / `distinct`.
 */
export class OnceLog {
  private readonly seen = new Map<string, number>();
  total = 0;

  constructor(
    private readonly logger: Logger,
    private readonly maxKeys = 256,
  ) {}

  report(kind: string, err: unknown, fields: Record<string, unknown> = {}): void {
    this.total++;
    const key = `${kind}\u0000${describeError(err)}`;
    const n = this.seen.get(key);
    if (n !== undefined) {
      this.seen.set(key, n + 1);
      return;
    }
    if (this.seen.size >= this.maxKeys) return;
    this.seen.set(key, 1);
    this.logger.error({ ...fields, kind, err }, `fuse: ${kind}: ${describeError(err)} (logged once; repeats are counted)`);
  }

  get distinct(): number {
    return this.seen.size;
  }
}
