import { LeaseError } from './errors.js';

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

interface PendingSend extends Waiter<void> {
  nodeID: bigint;
  timer: NodeJS.Timeout;
}

/**
 * A rendezvous between the HTTP handler that receives POST /handoff and
 * the loop that owns the lease, like LiteFS's unbuffered `HandoffCh`: a
 * send completes only when a receiver takes it, so the handler knows the
 * primary has actually started stepping down.
 */
export class HandoffChannel {
  private readonly receivers: Waiter<bigint>[] = [];
  private readonly senders: PendingSend[] = [];
  private closed = false;

  constructor(private readonly what: string) {}

  send(nodeID: bigint, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    const receiver = this.receivers.shift();
    if (receiver !== undefined) {
      receiver.resolve(nodeID);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        remove(this.senders, pending);
        clearTimeout(pending.timer);
        reject(signal!.reason);
      };
      const pending: PendingSend = {
        nodeID,
        timer: setTimeout(() => {
          remove(this.senders, pending);
          signal?.removeEventListener('abort', onAbort);
          reject(
            new LeaseError(
              'ERR_LEASE_HANDOFF_TIMEOUT',
              `handoff of ${this.what} to node ${nodeID.toString(16)} was not taken within ${timeoutMs}ms`,
            ),
          );
        }, timeoutMs),
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.senders.push(pending);
    });
  }

  receive(signal?: AbortSignal): Promise<bigint> {
    if (this.closed) return Promise.reject(this.closedError());
    const sender = this.senders.shift();
    if (sender !== undefined) {
      clearTimeout(sender.timer);
      sender.resolve();
      return Promise.resolve(sender.nodeID);
    }
    return new Promise<bigint>((resolve, reject) => {
      const onAbort = (): void => {
        remove(this.receivers, waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter<bigint> = {
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.receivers.push(waiter);
    });
  }

  /** Fails every pending and future send and receive with ERR_LEASE_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.receivers.splice(0)) r.reject(this.closedError());
    for (const s of this.senders.splice(0)) {
      clearTimeout(s.timer);
      s.reject(this.closedError());
    }
  }

  private closedError(): LeaseError {
    return new LeaseError('ERR_LEASE_CLOSED', `${this.what} is closed`);
  }
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

/** Never resolves; rejects with the signal's reason when it aborts. */
export function untilAborted(signal?: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) return;
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
