/**
 * A FIFO async mutex: callers queue in arrival order and run one at a time.
 * Used where several awaits must not interleave with other mutations of
 * the same state (a database's page checksums, dirty set and position).
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private depth = 0;

  get locked(): boolean {
    return this.depth > 0;
  }

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.depth++;
    try {
      await prev;
      return await fn();
    } finally {
      this.depth--;
      release();
    }
  }
}
