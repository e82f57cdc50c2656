import { Worker } from 'node:worker_threads';
import { FuseReaderError } from './reader-error.js';

/** A stop report: `code` is an errno name (ENODEV...), ECLOSED, or an ERR_FUSE_READER_* code. */
export type ReaderStop = Error & { code: string };

/** Receives what reader threads read. */
export interface ThreadReadSink {
  /** One whole kernel message. The buffer is the receiver's: no thread touches it again. */
  message(msg: Buffer): void;
  /**
   * One reader thread has exited and will never read again. `err.code`:
   * ENODEV (the connection ended), ECONNABORTED (it was aborted), ECLOSED
   * (stopped because the transport was closed), another errno (read(2)
   * failed), or ERR_FUSE_READER_CRASHED / ERR_FUSE_READER_START_FAILED.
   */
  stopped(err: ReaderStop): void;
}

export interface ThreadReaderOptions {
  /** Reader threads, each with one read(2) outstanding. */
  threads: number;
  /** Read buffer size: the kernel refuses reads into less than header + write_in + max_write. */
  bufSize: number;
}

/** Messages at least this long travel in the read buffer itself (the thread allocates a new one); shorter ones are copied to an exact-size buffer. */
export const COPY_BELOW = 64 * 1024;

/*
 * The reader thread, as CommonJS source: a string rather than a module file
 * so the same code runs from dist/ and from the TypeScript sources under
 * vitest (a worker cannot load a .ts file). It loops on a blocking read,
 * hands every message over as a transferred buffer (never reused here, so
 * the main thread may keep it), and re-arms the read at once. It stops on
 * any read error but the three that only mean "read again", and when the
 * main thread has set the closed flag (checked after every read: a blocked
 * read(2) cannot be interrupted from JavaScript, so the flag takes effect
 * when the next message or the end of the connection arrives).
 */
const READER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { fd, bufSize, copyBelow, state } = workerData;
const closed = new Int32Array(state);
let buf = new Uint8Array(bufSize);
let stop;
while (stop === undefined) {
  let n;
  try {
    n = readSync(fd, buf, 0, bufSize, null);
  } catch (err) {
    const code = err && typeof err.code === 'string' ? err.code : 'EIO';
    if (Atomics.load(closed, 0) !== 0) stop = { code: 'ECLOSED', message: 'transport closed' };
    else if (code !== 'EINTR' && code !== 'EAGAIN' && code !== 'ENOENT') stop = { code, message: String(err && err.message) };
    continue;
  }
  if (Atomics.load(closed, 0) !== 0) stop = { code: 'ECLOSED', message: 'transport closed' };
  else if (n === 0) stop = { code: 'ENODEV', message: 'end of file on the FUSE device' };
  else if (n >= copyBelow) {
    parentPort.postMessage(buf.subarray(0, n), [buf.buffer]);
    buf = new Uint8Array(bufSize);
  } else {
    const msg = buf.slice(0, n);
    parentPort.postMessage(msg, [msg.buffer]);
  }
}
parentPort.postMessage(stop);
`;

interface StopNote {
  code: string;
  message: string;
}

function isStopNote(v: unknown): v is StopNote {
  return typeof v === 'object' && v !== null && typeof (v as StopNote).code === 'string' && typeof (v as StopNote).message === 'string';
}

/**
 * Reads a FUSE device on dedicated threads (node:worker_threads), not on
 * libuv's pool: each thread parks in a blocking read(2), so none of the
 * pool's threads are taken and the filesystem's fs.promises calls always
 * find one free. Replies are written by the caller from its own thread.
 *
 * The descriptor stays owned by the caller, who must not close it before
 * `live` is 0 (`whenAllExited`): a thread may be inside read(2) on it, and a
 * closed-and-reused descriptor number would be read as if it were the device.
 */
export class ThreadReaders {
  private readonly closedFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly workers = new Set<Worker>();
  private exitWaiters: (() => void)[] = [];
  private started = false;

  constructor(
    private readonly fd: number,
    private readonly opts: ThreadReaderOptions,
    private readonly sink: ThreadReadSink,
  ) {}

  /** Threads that have not exited yet. */
  get live(): number {
    return this.workers.size;
  }

  start(): void {
    if (this.started) throw new Error('ThreadReaders.start() called twice');
    this.started = true;
    for (let i = 0; i < this.opts.threads; i++) this.spawn(i);
  }

  /**
   * Asks every thread to stop. A thread parked in read(2) sees this only when
   * its read returns (next message, or the connection ending); the message it
   * read then is dropped.
   */
  requestStop(): void {
    Atomics.store(this.closedFlag, 0, 1);
  }

  /** Resolves once every thread has exited. */
  whenAllExited(): Promise<void> {
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** @internal For tests that need to kill a thread the hard way. */
  threadsForTesting(): readonly Worker[] {
    return [...this.workers];
  }

  private spawn(index: number): void {
    let worker: Worker;
    try {
      worker = new Worker(READER_SOURCE, {
        eval: true,
        workerData: { fd: this.fd, bufSize: this.opts.bufSize, copyBelow: COPY_BELOW, state: this.closedFlag.buffer },
        // The parent's flags (loaders, inspector) are of no use to a read loop.
        execArgv: [],
        stdin: false,
      });
    } catch (err) {
      queueMicrotask(() =>
        this.sink.stopped(
          new FuseReaderError(
            'ERR_FUSE_READER_START_FAILED',
            `fuse: reader thread ${index} could not start: ${String((err as Error)?.message ?? err)}`,
            { cause: err },
          ),
        ),
      );
      return;
    }
    this.workers.add(worker);
    let note: StopNote | undefined;
    let crash: unknown;
    worker.on('message', (m: unknown) => {
      if (m instanceof Uint8Array) this.sink.message(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
      else if (isStopNote(m)) note = m;
    });
    worker.on('error', (err: unknown) => {
      crash ??= err;
    });
    // Node delivers every message the thread posted before it emits 'exit'.
    worker.on('exit', (exitCode: number) => {
      this.workers.delete(worker);
      this.sink.stopped(stopError(index, note, crash, exitCode));
      if (this.workers.size === 0) for (const w of this.exitWaiters.splice(0)) w();
    });
  }
}

function stopError(index: number, note: StopNote | undefined, crash: unknown, exitCode: number): ReaderStop {
  if (note) return Object.assign(new Error(`fuse: reader thread ${index}: ${note.message}`), { code: note.code });
  const why = crash !== undefined ? String((crash as Error)?.message ?? crash) : `exited with code ${exitCode} without saying why`;
  return new FuseReaderError(
    'ERR_FUSE_READER_CRASHED',
    `fuse: reader thread ${index} crashed: ${why}`,
    crash !== undefined ? { cause: crash } : undefined,
  );
}
