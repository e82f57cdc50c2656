import { Worker } from 'node:worker_threads';
import { writeDurablySync } from './durable-write-sync.mjs';

/*
 * Where: done with fs.promises each step of a durable write is a libuv-pool
 * round trip plus an event-loop wakeup (~1.8 ms per LTX file measured on a
 * loaded 2-vCPU machine). Done synchronously they cost what the disk
 * costs, but they hold the thread that answers FUSE requests. So the writer
 * measures the work and does it inline while its moving average stays under
 * INLINE_BUDGET_MS (the commit holds SQLite's writer anyway), and on a
 * dedicated thread (one message each way, ~0.9 ms of overhead) while the
 * disk is slow. Both run writeDurablySync (durable-write-sync.mjs).
 */
/** Longest the event loop may be held by one inline durable write, on average. */
const INLINE_BUDGET_MS = 1.5;
/** Weight of the newest measurement in the moving average. */
const EWMA_WEIGHT = 0.2;

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export class DurableWriter {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  /** Moving average of the sync work in ms; starts pessimistic until measured. */
  private costMs = INLINE_BUDGET_MS;

  /** Writes `data` to `path` durably; rejects with the errno error of the failing step. */
  write(path: string, data: Uint8Array): Promise<void> {
    // Inline only when nothing is queued on the thread, so writes stay in order.
    if (this.costMs < INLINE_BUDGET_MS && this.pending.size === 0) {
      try {
        this.writeInline(path, data);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return this.writeOnThread(path, data);
  }

  private writeInline(path: string, data: Uint8Array): void {
    try {
      this.measured(writeDurablySync(path, data));
    } catch (err) {
      // A failing disk is not a fast one.
      this.measured(INLINE_BUDGET_MS * 2);
      throw err;
    }
  }

  private measured(ms: number): void {
    this.costMs = this.costMs * (1 - EWMA_WEIGHT) + ms * EWMA_WEIGHT;
  }

  private writeOnThread(path: string, data: Uint8Array): Promise<void> {
    const worker = this.start();
    const id = ++this.seq;
    // A copy the thread owns: the caller may reuse its buffer at once.
    const copy = new Uint8Array(data);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, path, data: copy.buffer }, [copy.buffer]);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w !== null) await w.terminate();
  }

  private start(): Worker {
    if (this.worker !== null) return this.worker;
    const w = new Worker(new URL('./durable-write-sync.mjs', import.meta.url));
    w.unref();
    w.on('message', (m: { id: number; ms?: number; error?: { message: string; code?: string } }) => {
      if (m.ms !== undefined) this.measured(m.ms);
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if (m.error === undefined) p.resolve();
      else p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    });
    const fail = (err: Error): void => {
      if (this.worker === w) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`durable writer thread exited (${code})`)));
    this.worker = w;
    return w;
  }
}

/** One per process: every database's commits share the thread. */
export const durableWriter = new DurableWriter();
