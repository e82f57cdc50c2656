import { describe, expect, it } from 'vitest';
import { FuseErrno, FuseSession, Opcode, type FuseFilesystem, type FuseTransport, type SessionEnd } from '../../src/fuse/index.js';
import type { Logger } from '../../src/internal/log.js';
import { FakeTransport } from './fake-transport.js';
import { cstr, initIn, request, writeIn } from './wire.js';

/*
 * The session as the transport drives it: messages and the stop report are
 * pushed to it, whoever reads them (reader threads on /dev/fuse, or these
 * tests through the fake transport).
 */

function recordingLogger(): Logger & { errors: unknown[] } {
  const errors: unknown[] = [];
  const noop = (): void => {};
  const l = { debug: noop, info: noop, warn: noop, error: (o: unknown) => void errors.push(o), child: () => l, errors };
  return l as unknown as Logger & { errors: unknown[] };
}

async function started(fs: FuseFilesystem, logger?: Logger) {
  const t = new FakeTransport();
  const s = new FuseSession(fs, t, { logger });
  const p = s.start();
  t.push(request(Opcode.INIT, 2n, initIn(45, 0x73fffffb, 0x5fd)));
  await p;
  return { t, s };
}

describe('the session over a transport that pushes messages', () => {
  it('a crashed reader ends the session with reason error at once: handlers aborted, destroy once, transport closed; a late message is not handled', async () => {
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
    const { t, s } = await started(fs, logger);
    t.push(request(Opcode.SETLKW, 70n, Buffer.alloc(48)));
    await new Promise((r) => setTimeout(r, 10));
    t.crash();
    const end: SessionEnd = await s.ended;
    expect(end.reason).toBe('error');
    expect(end.error).toMatchObject({ code: 'ERR_FUSE_READER_CRASHED' });
    expect(aborted).toBe(true);
    expect(destroyed).toBe(1);
    expect(s.isRunning).toBe(false);
    expect(t.closed).toBe(true);
    expect(logger.errors).toHaveLength(1);
    // A message read just before the end may still arrive: nobody is left to answer it.
    const requestsBefore = s.stats().requests;
    t.push(request(Opcode.LOOKUP, 72n, cstr('x')));
    await new Promise((r) => setTimeout(r, 20));
    expect(lookups).toBe(0);
    expect(s.stats().requests).toBe(requestsBefore);
    expect(t.replies().some((r) => r.unique === 72n)).toBe(false);
  });

  it('a transport that cannot start ends the session with ERR_FUSE_READER_START_FAILED and rejects start()', async () => {
    const t = new FakeTransport();
    const failing: FuseTransport = {
      start: () => {
        throw Object.assign(new Error('no threads today'), { code: 'EAGAIN' });
      },
      writeSync: (c) => t.writeSync(c),
      write: (c) => t.write(c),
      close: () => t.close(),
    };
    const s = new FuseSession({}, failing);
    await expect(s.start()).rejects.toMatchObject({ code: 'ERR_FUSE_SESSION_CLOSED' });
    const end = await s.ended;
    expect(end.reason).toBe('error');
    expect(end.error).toMatchObject({ code: 'ERR_FUSE_READER_START_FAILED', message: expect.stringMatching(/no threads today/) });
    expect(t.closed).toBe(true);
  });

  it('every message arrives in a buffer of its own: small WRITE payloads are not copied again', async () => {
    const seen: Buffer[] = [];
    const { t, s } = await started({ write: (_c, _n, req) => (seen.push(req.data), req.data.length) });
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
