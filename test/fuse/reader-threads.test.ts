import { closeSync, open, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DevFuseTransport, type ReaderStop } from '../../src/fuse/index.js';
import { COPY_BELOW, ThreadReaders } from '../../src/fuse/session/reader-threads.js';
import { runProcess } from '../helpers/processes.js';
import { withTimeout } from '../helpers/wait.js';

/*
 * The reader threads on ordinary descriptors (no FUSE): a regular file
 * returns bufSize-sized "messages" and then end of file (read 0, reported as
 * ENODEV like a finished connection); a FIFO blocks like /dev/fuse does.
 */

const BUF = (1 << 20) + 4096;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fuse-threads-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function collector() {
  const messages: Buffer[] = [];
  const stops: ReaderStop[] = [];
  let wake: () => void = () => undefined;
  const changed = (): void => wake();
  return {
    messages,
    stops,
    sink: {
      message: (m: Buffer) => {
        messages.push(m);
        changed();
      },
      stopped: (e: ReaderStop) => {
        stops.push(e);
        changed();
      },
    },
    /** Waits (bounded) until `cond` holds. */
    async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, 20);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    },
  };
}

/** A FIFO with a blocking read end (for the threads) and a write end (for the test). */
async function fifo(): Promise<{ readFd: number; writeFd: number; path: string }> {
  const dir = await tempDir();
  const p = path.join(dir, 'fifo');
  const r = await runProcess('mkfifo', [p]);
  expect(r.code).toBe(0);
  // Opening either end blocks until the other is opened: open the read end on the pool first.
  // A raw descriptor, not a FileHandle: the transport closes it, and a FileHandle would close it again when collected.
  const reading = new Promise<number>((resolve, reject) => open(p, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
  const writeFd = openSync(p, 'w');
  const readFd = await reading;
  cleanups.push(() => {
    try {
      closeSync(writeFd);
    } catch {
      // Already closed by the test.
    }
  });
  return { readFd, writeFd, path: p };
}

describe('reader threads', () => {
  it('hand over every message in a buffer of its own: big ones in the read buffer, small ones copied; end of file stops the thread', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'data');
    const size = 2 * BUF + 100;
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = (i * 7 + (i >> 12)) & 0xff;
    await writeFile(file, content);
    const fd = openSync(file, 'r');
    cleanups.push(() => closeSync(fd));
    const c = collector();
    const readers = new ThreadReaders(fd, { threads: 1, bufSize: BUF }, c.sink);
    readers.start();
    expect(readers.live).toBe(1);
    await c.until(() => c.stops.length === 1, 'the thread to stop at end of file');
    await readers.whenAllExited();
    expect(readers.live).toBe(0);
    expect(c.stops[0]!.code).toBe('ENODEV');
    expect(c.messages.map((m) => m.length)).toEqual([BUF, BUF, 100]);
    // All three still hold their bytes after later reads: no buffer was reused.
    expect(Buffer.concat(c.messages).equals(content)).toBe(true);
    expect(c.messages[0]!.buffer).not.toBe(c.messages[1]!.buffer);
    expect(100).toBeLessThan(COPY_BELOW);
    expect(c.messages[2]!.buffer.byteLength).toBe(100); // copied to an exact-size buffer
  });

  it('a thread killed the hard way is reported as crashed', async () => {
    const f = await fifo();
    cleanups.push(() => closeSync(f.readFd));
    const c = collector();
    const readers = new ThreadReaders(f.readFd, { threads: 1, bufSize: BUF }, c.sink);
    readers.start();
    writeSync(f.writeFd, Buffer.from('one'));
    await c.until(() => c.messages.length === 1, 'the first message');
    expect(c.messages[0]!.toString()).toBe('one');
    // terminate() cannot interrupt a blocked read(2): it takes effect once the read returns.
    const [thread] = readers.threadsForTesting();
    const terminated = thread!.terminate();
    writeSync(f.writeFd, Buffer.from('two'));
    await withTimeout(terminated, 10_000, 'the thread to terminate');
    await c.until(() => c.stops.length === 1, 'the stop report');
    expect(c.stops[0]!.code).toBe('ERR_FUSE_READER_CRASHED');
    expect(c.stops[0]!.message).toMatch(/crashed: exited with code 1/);
    expect(readers.live).toBe(0);
  });
});

describe('DevFuseTransport', () => {
  it('keeps the descriptor open while a thread is parked in read; the thread drops what it reads after close and exits; then the descriptor is closed', async () => {
    const f = await fifo();
    const t = new DevFuseTransport(f.readFd, { threads: 2, bufSize: BUF });
    const c = collector();
    t.start(c.sink);
    const threads = t.readerThreadsForTesting()!;
    writeSync(f.writeFd, Buffer.from('hello'));
    await c.until(() => c.messages.length === 1, 'a message');
    expect(c.messages[0]!.toString()).toBe('hello');

    t.close();
    expect(t.isClosed).toBe(false); // both threads are still parked in read(2)
    expect(() => t.writeSync([Buffer.from('x')])).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    // Each write wakes one thread, which finds the closed flag, drops the bytes and exits.
    writeSync(f.writeFd, Buffer.from('late-1'));
    await c.until(() => threads.live === 1, 'the first thread to stop');
    expect(t.isClosed).toBe(false);
    expect(c.stops).toEqual([]); // reported once, when the last thread has stopped
    writeSync(f.writeFd, Buffer.from('late-2'));
    await c.until(() => c.stops.length === 1, 'the stop report');
    await c.until(() => t.isClosed, 'the descriptor to be closed');
    expect(c.stops.map((s) => s.code)).toEqual(['ECLOSED']);
    expect(c.messages).toHaveLength(1);
    // The FIFO's only reader is gone: writing now fails (Node ignores SIGPIPE).
    expect(() => writeSync(f.writeFd, Buffer.from('nobody'))).toThrow(expect.objectContaining({ code: 'EPIPE' }));
  });

  it('reports the end of the connection once, after the last thread has stopped', async () => {
    const f = await fifo();
    const t = new DevFuseTransport(f.readFd, { threads: 2, bufSize: BUF });
    const c = collector();
    let liveAtReport = -1;
    const threads = (): number => t.readerThreadsForTesting()!.live;
    t.start({ message: c.sink.message, stopped: (e) => ((liveAtReport = threads()), c.sink.stopped(e)) });
    writeSync(f.writeFd, Buffer.from('last'));
    await c.until(() => c.messages.length === 1, 'the message');
    // No writer left: both threads read end of file, the FIFO's "connection ended".
    closeSync(f.writeFd);
    await c.until(() => c.stops.length === 1 && threads() === 0, 'both threads to stop');
    await new Promise((r) => setTimeout(r, 50));
    expect(c.stops.map((s) => s.code)).toEqual(['ENODEV']);
    expect(liveAtReport).toBe(0);
    t.close();
    expect(t.isClosed).toBe(true);
  });

  it('reports a crashed thread at once while another still reads, and closes the descriptor only when that one has exited', async () => {
    const f = await fifo();
    const t = new DevFuseTransport(f.readFd, { threads: 2, bufSize: BUF });
    const c = collector();
    t.start(c.sink);
    const threads = t.readerThreadsForTesting()!;
    const [victim] = threads.threadsForTesting();
    // terminate() acts when the victim's read(2) returns; each write wakes one thread, not necessarily the victim.
    const terminated = victim!.terminate();
    for (let i = 0; i < 50 && c.stops.length === 0; i++) {
      writeSync(f.writeFd, Buffer.from(`poke-${i}`));
      await new Promise((r) => setTimeout(r, 20));
    }
    await withTimeout(terminated, 10_000, 'the thread to terminate');
    await c.until(() => c.stops.length === 1, 'the crash report');
    expect(c.stops[0]!.code).toBe('ERR_FUSE_READER_CRASHED');
    expect(threads.live).toBe(1);
    // What the session does next: close. The survivor is parked in read(2), so the fd stays open.
    t.close();
    expect(t.isClosed).toBe(false);
    const delivered = c.messages.length;
    writeSync(f.writeFd, Buffer.from('after-close'));
    await c.until(() => t.isClosed, 'the descriptor to be closed');
    expect(threads.live).toBe(0);
    expect(c.stops).toHaveLength(1);
    expect(c.messages).toHaveLength(delivered);
  });

  it('reports a read error other than EINTR/EAGAIN/ENOENT as the stop reason', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'wo');
    await writeFile(file, 'x');
    const fd = openSync(file, 'w'); // write-only: read(2) fails with EBADF
    const t = new DevFuseTransport(fd, { threads: 1, bufSize: BUF });
    const c = collector();
    t.start(c.sink);
    await c.until(() => c.stops.length === 1, 'the stop report');
    expect(c.stops[0]!.code).toBe('EBADF');
    t.close();
    expect(t.isClosed).toBe(true);
  });
});
