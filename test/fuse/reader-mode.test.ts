import { describe, expect, it } from 'vitest';
import {
  FuseErrno,
  FuseSession,
  Opcode,
  POOL_HEADROOM,
  chooseReader,
  startThreadpoolSize,
  type FuseFilesystem,
  type FuseTransport,
  type SessionEnd,
} from '../../src/fuse/index.js';
import type { Logger } from '../../src/internal/log.js';
import { FakeTransport } from './fake-transport.js';
import { cstr, initIn, request, writeIn } from './wire.js';

const env = (...vars: string[]): string => [...vars, 'PATH=/usr/bin', ''].join('\0');

describe('start-time libuv pool size', () => {
  it('reads UV_THREADPOOL_SIZE the way libuv does: default 4, atoi, clamped to 1..1024', () => {
    expect(startThreadpoolSize(env('HOME=/root'))).toBe(4);
    expect(startThreadpoolSize(env('UV_THREADPOOL_SIZE=16'))).toBe(16);
    expect(startThreadpoolSize(env('UV_THREADPOOL_SIZE=8x'))).toBe(8);
    expect(startThreadpoolSize(env('UV_THREADPOOL_SIZE=0'))).toBe(1);
    expect(startThreadpoolSize(env('UV_THREADPOOL_SIZE=lots'))).toBe(1);
    expect(startThreadpoolSize(env('UV_THREADPOOL_SIZE=5000'))).toBe(1024);
    // A variable whose name merely ends the same way is not it.
    expect(startThreadpoolSize(env('XUV_THREADPOOL_SIZE=64'))).toBe(4);
  });

  it('ignores process.env: only the environment the process started with counts', () => {
    const before = startThreadpoolSize();
    const saved = process.env.UV_THREADPOOL_SIZE;
    process.env.UV_THREADPOOL_SIZE = String((before ?? 4) + 100);
    try {
      expect(startThreadpoolSize()).toBe(before);
    } finally {
      if (saved === undefined) delete process.env.UV_THREADPOOL_SIZE;
      else process.env.UV_THREADPOOL_SIZE = saved;
    }
  });
});

describe('chooseReader', () => {
  const base = { poolReaders: 4, workerThreads: 1, workerCapable: true };

  it("'auto' picks 'pool' only with readers + 4 pool threads at start", () => {
    expect(POOL_HEADROOM).toBe(4);
    const big = chooseReader({ ...base, requested: 'auto', threadpoolSize: 8 });
    expect(big).toMatchObject({ mode: 'pool', readers: 4, threadpoolSize: 8, threadpoolNeeded: 8, requested: 'auto' });
    expect(big.reason).toMatch(/libuv pool is 8 threads/);
    const small = chooseReader({ ...base, requested: 'auto', threadpoolSize: 7 });
    expect(small).toMatchObject({ mode: 'worker', readers: 1, threadpoolSize: 7 });
    expect(small.reason).toMatch(/fewer than the 8/);
    expect(chooseReader({ ...base, requested: 'auto', threadpoolSize: 4 }).mode).toBe('worker');
    expect(chooseReader({ ...base, poolReaders: 1, requested: 'auto', threadpoolSize: 5 }).mode).toBe('pool');
    expect(chooseReader({ ...base, requested: 'auto', threadpoolSize: undefined }).mode).toBe('worker');
  });

  it('honours explicit choices, and falls back to pool for transports without threads', () => {
    expect(chooseReader({ ...base, requested: 'pool', threadpoolSize: 4 }).mode).toBe('pool');
    expect(chooseReader({ ...base, requested: 'worker', threadpoolSize: 64 }).mode).toBe('worker');
    const fallback = chooseReader({ ...base, workerCapable: false, requested: 'auto', threadpoolSize: 4 });
    expect(fallback.mode).toBe('pool');
    expect(fallback.reason).toMatch(/transport/);
  });
});

function recordingLogger(): Logger & { infos: { obj: unknown; msg: string | undefined }[]; errors: unknown[] } {
  const infos: { obj: unknown; msg: string | undefined }[] = [];
  const errors: unknown[] = [];
  const noop = (): void => {};
  const l = {
    debug: noop,
    warn: noop,
    info: (obj: unknown, msg?: string) => void infos.push({ obj, msg }),
    error: (o: unknown) => void errors.push(o),
    child: () => l,
    infos,
    errors,
  };
  return l as unknown as Logger & typeof l;
}

/** A transport that can only be read through the pool (no readOnThreads). */
function poolOnly(t: FakeTransport): FuseTransport {
  return { read: (b, cb) => t.read(b, cb), writeSync: (c) => t.writeSync(c), write: (c) => t.write(c), close: () => t.close() };
}

async function startedWorker(fs: FuseFilesystem, threads: number, logger?: Logger) {
  const t = new FakeTransport();
  const s = new FuseSession(fs, t, { reader: 'worker', workerThreads: threads, logger });
  const p = s.start();
  t.push(request(Opcode.INIT, 2n, initIn(45, 0x73fffffb, 0x5fd)));
  await p;
  return { t, s };
}

describe('session reader modes over the fake transport', () => {
  it('validates reader and workerThreads, and refuses worker mode on a pool-only transport', () => {
    const t = new FakeTransport();
    expect(() => new FuseSession({}, t, { reader: 'thread' as 'worker' })).toThrow(
      expect.objectContaining({ code: 'ERR_FUSE_BAD_OPTION' }),
    );
    expect(() => new FuseSession({}, t, { workerThreads: 0 })).toThrow(/workerThreads must be an integer from 1 to 8, got 0/);
    expect(() => new FuseSession({}, t, { workerThreads: 1.5 })).toThrow(/got 1.5/);
    expect(() => new FuseSession({}, poolOnly(t), { reader: 'worker' })).toThrow(expect.objectContaining({ code: 'ERR_FUSE_BAD_OPTION' }));
    const auto = new FuseSession({}, poolOnly(t), { reader: 'auto' });
    expect(auto.reader.mode).toBe('pool');
  });

  it("logs the chosen mode and reports it in negotiated and stats; 'worker' starts workerThreads threads", async () => {
    const logger = recordingLogger();
    const { t, s } = await startedWorker({}, 2, logger);
    expect(t.threadOptions).toEqual({ threads: 2, bufSize: (1 << 20) + 4096 });
    expect(s.negotiated?.reader).toMatchObject({ mode: 'worker', requested: 'worker', readers: 2 });
    expect(s.stats().reader).toBe('worker');
    const chosen = logger.infos.find((i) => i.msg === "fuse: reading /dev/fuse in 'worker' mode");
    expect(chosen?.obj).toMatchObject({ reader: 'worker', requested: 'worker', readers: 2 });
    t.end();
    expect((await s.ended).reason).toBe('unmounted');
    expect(t.closed).toBe(true);
  });

  it('a crashed reader thread ends the session with reason error at once; the channel is released only when the other thread has stopped', async () => {
    let destroyed = 0;
    let aborted = false;
    let lookups = 0;
    const fs: FuseFilesystem = {
      destroy: () => void destroyed++,
      lookup: () => {
        lookups++;
        throw new FuseErrno('ENOENT');
      },
      setlk: (ctx) =>
        new Promise((_res, rej) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            rej(new FuseErrno('EINTR'));
          }),
        ),
    };
    const logger = recordingLogger();
    const { t, s } = await startedWorker(fs, 2, logger);
    t.push(request(Opcode.SETLKW, 70n, Buffer.alloc(48)));
    await new Promise((r) => setTimeout(r, 10));
    t.crashThread();
    const end: SessionEnd = await s.ended;
    expect(end.reason).toBe('error');
    expect(end.error).toMatchObject({ code: 'ERR_FUSE_READER_CRASHED' });
    expect(aborted).toBe(true);
    expect(destroyed).toBe(1);
    expect(s.isRunning).toBe(false);
    expect(logger.errors).toHaveLength(1);
    // One thread is still parked in its read: the fd must stay open for it.
    expect(t.closeRequested).toBe(true);
    expect(t.closed).toBe(false);
    expect(t.liveThreads).toBe(1);
    // Its next read returns a request: dropped, and the thread stops.
    const requestsBefore = s.stats().requests;
    t.push(request(Opcode.LOOKUP, 72n, cstr('x')));
    for (let i = 0; i < 100 && !t.closed; i++) await new Promise((r) => setTimeout(r, 5));
    expect(t.closed).toBe(true);
    expect(lookups).toBe(0);
    expect(s.stats().requests).toBe(requestsBefore);
    expect(t.replies().some((r) => r.unique === 72n)).toBe(false);
  });

  it('in worker mode every message arrives in a buffer of its own: small WRITE payloads are not copied again', async () => {
    const seen: Buffer[] = [];
    const { t, s } = await startedWorker({ write: (_c, _n, req) => (seen.push(req.data), req.data.length) }, 1);
    const body = writeIn(1n, 0n, Buffer.alloc(100, 0x61));
    t.push(request(Opcode.WRITE, 80n, body));
    t.push(request(Opcode.WRITE, 82n, body));
    await t.replyTo(82n);
    expect(seen).toHaveLength(2);
    // Both views start 80 bytes into a buffer that holds exactly one message (header 40 + write_in 40).
    for (const d of seen) {
      expect(d.byteOffset).toBe(80);
      expect(d.buffer.byteLength).toBe(180);
      expect(d.every((b) => b === 0x61)).toBe(true);
    }
    expect(seen[0]!.buffer).not.toBe(seen[1]!.buffer);
    expect(s.stats().requests).toBe(3);
    t.end();
    await s.ended;
  });
});

describe("explicit 'pool' with a libuv pool too small for its readers", () => {
  it('is refused with ERR_FUSE_BAD_OPTION before anything is mounted (it would hang the first client)', async () => {
    const { runProcess } = await import('../helpers/processes.js');
    const { makeMountDir, removeMountDir } = await import('../helpers/mounts.js');
    const { fuseMountsAt } = await import('../../src/fuse/index.js');
    const dir = await makeMountDir('fuse-pool-small-');
    try {
      // The pool size counts only as the process started, so a child it is.
      const script = `
        const { mount } = await import(${JSON.stringify(new URL('../../dist/fuse/index.js', import.meta.url).href)});
        try { await mount(${JSON.stringify(dir)}, {}, { reader: 'pool', readers: 4 }); console.log('mounted'); process.exit(3); }
        catch (err) { console.log(err.code); console.log(err.message); }`;
      const env = { ...process.env, UV_THREADPOOL_SIZE: '4' };
      const r = await runProcess(process.execPath, ['--input-type=module', '-e', script], { env, timeoutMs: 20_000 });
      expect(r.timedOut).toBe(false);
      const [code, message] = r.stdout.trim().split('\n');
      expect(code, r.stderr).toBe('ERR_FUSE_BAD_OPTION');
      expect(message).toMatch(/UV_THREADPOOL_SIZE was 4/);
      expect(await fuseMountsAt(dir)).toEqual([]);
    } finally {
      await removeMountDir(dir);
    }
  });
});
