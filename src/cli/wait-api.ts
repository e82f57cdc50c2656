import { describeError } from '../internal/index.js';

/**
 * Errors that mean "the node's API is not up (yet)": nothing listens on the
 * port, the listener went away mid-request, or the network path is not
 * there yet at boot. A command started next to `litefs mount` (systemd,
 * compose) sees these until the node has opened its store and listens.
 */
const NOT_UP = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

export function isNotUpYet(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_UP.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Calls `call` until it answers, retrying (every 200 ms) while the API is
 * not up, until `deadline` (ms since the epoch). Says once on stderr what it
 * is waiting for; any other failure is thrown at once.
 */
export async function untilAnswered<T>(call: () => Promise<T>, url: string, deadline: number, command: string): Promise<T> {
  let said = false;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isNotUpYet(err)) throw err;
      if (Date.now() >= deadline) throw new Error(`the node's API at ${url} did not come up in time (${describeError(err)})`);
      if (!said) {
        said = true;
        process.stderr.write(`litefs ${command}: waiting for the node's API at ${url} (${describeError(err)})\n`);
      }
    }
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(200, deadline - Date.now()))));
  }
}
