import { readFileSync } from 'node:fs';

/** How a session reads /dev/fuse. */
export type ReaderMode = 'pool' | 'worker';
/** What the caller asks for; 'auto' picks 'pool' only when the pool is provably big enough. */
export type ReaderOption = ReaderMode | 'auto';

/** The reader mode a session chose, and why (reported in `negotiated.reader` and `stats().reader`). */
export interface ReaderInfo {
  mode: ReaderMode;
  requested: ReaderOption;
  /** One sentence for logs and status pages. */
  reason: string;
  /** Reads outstanding at once: pool reads in 'pool' mode, reader threads in 'worker' mode. */
  readers: number;
  /** libuv's pool size as the process started (libuv sizes its pool once, from the start-time environment); undefined if unreadable. */
  threadpoolSize: number | undefined;
  /** Smallest pool that leaves the filesystem's own I/O room next to the pool readers: readers + POOL_HEADROOM. */
  threadpoolNeeded: number;
}

/** Pool threads left free for the filesystem's own fs.promises calls and notifications in 'pool' mode. */
export const POOL_HEADROOM = 4;
/** libuv's default and maximum pool sizes (uv_threadpool.c, libuv 1.46). */
const UV_DEFAULT_THREADPOOL = 4;
const UV_MAX_THREADPOOL = 1024;

/**
 * UV_THREADPOOL_SIZE as libuv will have read it: from /proc/self/environ,
 * the environment the process was started with. process.env is no guide:
 * setting it inside the program changes it, but libuv sized its pool when
 * the first work item was queued, which under ESM is while the entry module
 * loads, i.e. before any user code runs (measured: a script setting it to
 * 16 at the top of its entry module still got 4 threads).
 * Returns undefined when /proc is unreadable.
 */
export function startThreadpoolSize(environ?: string): number | undefined {
  let raw = environ;
  if (raw === undefined) {
    try {
      raw = readFileSync('/proc/self/environ', 'latin1');
    } catch {
      return undefined;
    }
  }
  for (const entry of raw.split('\0')) {
    if (entry.startsWith('UV_THREADPOOL_SIZE=')) return libuvPoolSize(entry.slice('UV_THREADPOOL_SIZE='.length));
  }
  return UV_DEFAULT_THREADPOOL;
}

/** libuv's reading of the variable: atoi, then clamped to 1..1024. */
function libuvPoolSize(value: string): number {
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n <= 0) return 1;
  return Math.min(n, UV_MAX_THREADPOOL);
}

export interface ReaderChoiceInput {
  requested: ReaderOption;
  /** Pool reads 'pool' mode would keep outstanding. */
  poolReaders: number;
  /** Reader threads 'worker' mode would start. */
  workerThreads: number;
  /** False when the transport can only read through the pool (an in-memory test transport, say). */
  workerCapable: boolean;
  threadpoolSize: number | undefined;
}

/**
 * 'pool' parks `poolReaders` libuv threads in read(2) for the whole session,
 * so it is safe only with at least POOL_HEADROOM threads to spare: with the
 * default pool of 4 and 4 readers, every fs.promises call of a handler waits
 * forever and the client that sent the request hangs in D state. 'auto'
 * therefore picks 'pool' only when the start-time pool is big enough, and
 * 'worker' (dedicated threads, no pool use) otherwise.
 */
export function chooseReader(input: ReaderChoiceInput): ReaderInfo {
  const { requested, poolReaders, workerThreads, workerCapable, threadpoolSize } = input;
  const needed = poolReaders + POOL_HEADROOM;
  const base = { requested, threadpoolSize, threadpoolNeeded: needed };
  const pool = (reason: string): ReaderInfo => ({ ...base, mode: 'pool', readers: poolReaders, reason });
  const worker = (reason: string): ReaderInfo => ({ ...base, mode: 'worker', readers: workerThreads, reason });
  const size = threadpoolSize === undefined ? 'unknown (no /proc/self/environ)' : String(threadpoolSize);
  if (requested === 'pool') return pool(`asked for 'pool' (libuv pool ${size}, ${needed} advised)`);
  if (requested === 'worker') return worker(`asked for 'worker'`);
  if (!workerCapable) return pool(`the transport can only read through the libuv pool (pool ${size})`);
  if (threadpoolSize !== undefined && threadpoolSize >= needed) {
    return pool(
      `libuv pool is ${threadpoolSize} threads (UV_THREADPOOL_SIZE at process start), enough for ${poolReaders} readers + ${POOL_HEADROOM} spare`,
    );
  }
  return worker(
    threadpoolSize === undefined
      ? 'the libuv pool size cannot be read from /proc/self/environ'
      : `libuv pool is ${threadpoolSize} threads (UV_THREADPOOL_SIZE at process start), fewer than the ${needed} that ${poolReaders} pool readers need`,
  );
}
