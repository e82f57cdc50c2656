import { performance } from 'node:perf_hooks';

/**
 * Milliseconds on a clock that never jumps: wall-clock time at process
 * start plus a monotonic count since. Lease deadlines are measured on it,
 * so an NTP step of the system clock can neither shorten nor stretch how
 * long a primary believes its lease lasts; only the clock's rate matters,
 * and the fence margin (fence.ts) covers that.
 */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
