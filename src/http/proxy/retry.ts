import { setTimeout as sleep } from 'node:timers/promises';
import { isErrno } from '../../internal/index.js';

/** True when a connection attempt was refused (the app is not listening yet). */
export function isConnectionRefused(err: unknown): boolean {
  if (isErrno(err, 'ECONNREFUSED')) return true;
  // Happy-eyeballs dials (localhost → ::1 and 127.0.0.1) fail with an AggregateError.
  if (err instanceof AggregateError) return err.errors.length > 0 && err.errors.every(isConnectionRefused);
  return false;
}

/**
 * True for errors a reused keep-alive connection produces when the app
 * closed it just as the request went out: worth one more try for a
 * bodiless idempotent request, as Go's Transport does.
 */
export function isStaleConnection(err: unknown): boolean {
  return isErrno(err, 'UND_ERR_SOCKET') || isErrno(err, 'ECONNRESET') || isErrno(err, 'EPIPE');
}

/** Sleeps, or returns early (false) when the signal aborts. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
