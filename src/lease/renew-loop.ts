import { describeError, silentLogger, sleep, type Logger } from '../internal/index.js';
import { isLeaseError } from './errors.js';
import type { Lease } from './types.js';

export interface RenewLoopOptions {
  /** Stops the loop (result 'aborted'); the lease is left as it is. */
  signal: AbortSignal;
  /** Pause between attempts after a failed renewal (default min(1s, TTL/10): LiteFS's 1s at its 10s minimum TTL). */
  retryIntervalMs?: number;
  /**
   * Give up once renewedAt + TTL - margin has passed (default min(1s,
   * TTL/10), LiteFS's 1s at its 10s TTL): the lease may be gone on Consul's
   * side any moment after TTL, and a primary must stop writing before
   * another node can start.
   */
  safetyMarginMs?: number;
  now?: () => number;
  logger?: Logger;
  /** Called after every successful renewal. */
  onRenew?: (lease: Lease) => void;
}

export type RenewLoopResult =
  | { reason: 'aborted' }
  /** The lease is lost (ERR_LEASE_EXPIRED) or can no longer be trusted (renewals kept failing). */
  | { reason: 'expired'; error: unknown };

/**
 * Keeps a lease alive the way LiteFS's primary does: renew every TTL/2; on
 * a failure other than "expired", retry every retryIntervalMs until the
 * lease's own validity (renewedAt + TTL - margin) runs out. Each attempt is
 * cut off at that deadline, so a hung Consul cannot keep a primary writing
 * past its lease. Not part of Lease itself: the store decides when to run
 * it and what to do when it ends.
 */
export async function runRenewLoop(lease: Lease, opts: RenewLoopOptions): Promise<RenewLoopResult> {
  const now = opts.now ?? Date.now;
  const retryMs = opts.retryIntervalMs ?? Math.min(1_000, lease.ttlMs / 10);
  const marginMs = opts.safetyMarginMs ?? Math.min(1_000, lease.ttlMs / 10);
  const logger = opts.logger ?? silentLogger;
  const { signal } = opts;
  let wait = lease.ttlMs / 2;
  for (;;) {
    try {
      await sleep(wait, signal);
    } catch {
      return { reason: 'aborted' };
    }
    const deadline = lease.renewedAt.getTime() + lease.ttlMs - marginMs;
    const budget = deadline - now();
    try {
      if (budget <= 0) throw new Error(`lease ${lease.id} was last renewed at ${lease.renewedAt.toISOString()} and its TTL has run out`);
      await lease.renew({ signal: AbortSignal.any([signal, AbortSignal.timeout(budget)]) });
      opts.onRenew?.(lease);
      wait = lease.ttlMs / 2;
    } catch (err) {
      if (signal.aborted) return { reason: 'aborted' };
      if (isLeaseError(err, 'ERR_LEASE_EXPIRED')) return { reason: 'expired', error: err };
      if (now() >= deadline) {
        logger.warn({ err: describeError(err), leaseID: lease.id }, 'lease: renewals failed until the lease ran out');
        return { reason: 'expired', error: err };
      }
      logger.warn({ err: describeError(err), leaseID: lease.id }, 'lease: renewal failed; retrying');
      wait = Math.min(retryMs, Math.max(0, deadline - now()));
    }
  }
}
