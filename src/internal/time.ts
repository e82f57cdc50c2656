/** setTimeout fires after 1ms for delays above 2^31-1 ms; longer sleeps are chained. */
const MAX_TIMER_MS = 2_147_483_647;

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let timer: NodeJS.Timeout;
    let left = Math.max(0, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const arm = (): void => {
      const step = Math.min(left, MAX_TIMER_MS);
      left -= step;
      timer = setTimeout(() => {
        if (left > 0) return arm();
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, step);
    };
    arm();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settles like `p`, or rejects with `onTimeout()` (an Error, or a message)
 * when `p` has not settled after `ms`.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: string | (() => Error)): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      reject(typeof onTimeout === 'string' ? new Error(`${onTimeout} timed out after ${ms} ms`) : onTimeout());
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
