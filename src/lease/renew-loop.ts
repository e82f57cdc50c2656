import { describeError, silentLogger, sleep, type Logger } from '../internal/index.js';
import { monotonicNow } from './clock.js';
import { isLeaseError } from './errors.js';
import { Fence, fenceMarginMs } from './fence.js';
import type { Lease } from './types.js';

export interface RenewLoopOptions {
  /** Stops the loop (result 'aborted'); the lease is left as it is. */
  signal: AbortSignal;
  /** Pause between attempts after a failed renewal (default min(1s, TTL/10): LiteFS's 1s at its 10s minimum TTL). */
  retryIntervalMs?: number;
  /**
   * The fence margin: the loop gives up, and onFence runs, at (start of the
   * last successful renewal) + TTL − margin. Default fenceMarginMs(TTL),
   * TTL × 1% + 200 ms (see fence.ts for the bound it keeps).
   */
  safetyMarginMs?: number;
  /**
   * When the request that acquired the lease was sent, on `now`'s clock.
   * Default: lease.renewedAt carried over to that clock. Callers that
   * timestamp before calling acquire give the tighter (earlier) value.
   */
  validFrom?: number;
  /** Default monotonicNow. */
  now?: () => number;
  logger?: Logger;
  /** Called after every successful renewal. */
  onRenew?: (lease: Lease) => void;
  /**
   * Called from a local timer, synchronously, the moment the lease can no
   * longer be trusted, even while a renewal is still hanging: the caller
   * must stop accepting writes right there. The loop then ends 'expired'.
   */
  onFence?: () => void;
}

export type RenewLoopResult =
  | { reason: 'aborted' }
  /** The lease is lost (ERR_LEASE_EXPIRED) or can no longer be trusted (renewals kept failing). */
  | { reason: 'expired'; error: unknown };

/**
 * Keeps a lease alive the way LiteFS's primary does: renew every TTL/2; on
 * a failure other than "expired", retry every retryIntervalMs. A Fence
 * (fence.ts) bounds it all: when no renewal has succeeded for TTL − margin
 * its timer fires onFence and cuts off the pending attempt, so neither a
 * hung store nor a dead network keeps a primary writing past its lease.
 * Not part of Lease itself: the store decides when to run it and what to
 * do when it ends.
 */
export async function runRenewLoop(lease: Lease, opts: RenewLoopOptions): Promise<RenewLoopResult> {
  const now = opts.now ?? monotonicNow;
  const retryMs = opts.retryIntervalMs ?? Math.min(1_000, lease.ttlMs / 10);
  const marginMs = opts.safetyMarginMs ?? fenceMarginMs(lease.ttlMs);
  const logger = opts.logger ?? silentLogger;
  const { signal } = opts;
  const fence = new Fence({
    ttlMs: lease.ttlMs,
    marginMs,
    now,
    onExpire: () => {
      if (!signal.aborted) opts.onFence?.();
    },
  });
  fence.extend(opts.validFrom ?? now() - Math.max(0, Date.now() - lease.renewedAt.getTime()));
  const fenced = (): RenewLoopResult => ({ reason: 'expired', error: fence.signal.reason });
  const both = AbortSignal.any([signal, fence.signal]);
  let wait = lease.ttlMs / 2;
  try {
    for (;;) {
      try {
        await sleep(wait, both);
      } catch {
        return signal.aborted ? { reason: 'aborted' } : fenced();
      }
      const startedAt = now();
      try {
        await raceAbort(lease.renew({ signal: both }), both);
        if (fence.expired) return fenced();
        fence.extend(startedAt);
        opts.onRenew?.(lease);
        wait = lease.ttlMs / 2;
      } catch (err) {
        if (signal.aborted) return { reason: 'aborted' };
        if (fence.expired) {
          logger.warn(
            { err: describeError(err), leaseID: lease.id },
            'lease: renewals failed until the fence; the lease can no longer be trusted',
          );
          return fenced();
        }
        if (isLeaseError(err, 'ERR_LEASE_EXPIRED')) return { reason: 'expired', error: err };
        logger.warn({ err: describeError(err), leaseID: lease.id }, 'lease: renewal failed; retrying');
        wait = Math.min(retryMs, Math.max(0, fence.deadline - now()));
      }
    }
  } finally {
    fence.stop();
  }
}

/**
 * `p`, or the signal's reason as soon as it aborts: a client that is slow
 * to honour its abort signal must not hold the loop past the fence.
 */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      p.catch(() => undefined);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
