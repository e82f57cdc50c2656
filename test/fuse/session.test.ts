import { describe, expect, it } from 'vitest';
import {
  CAPABILITY_BITS,
  FuseErrno,
  FuseSession,
  Opcode,
  type FuseFilesystem,
  type RequestContext,
  type SessionOptions,
  type WriteRequest,
} from '../../src/fuse/index.js';
import type { Logger } from '../../src/internal/log.js';
import { FakeTransport } from './fake-transport.js';
import { cstr, initIn, request, u32s, u64s, writeIn } from './wire.js';

const KERNEL_FLAGS = 0x73fffffb; // what kernel 7.45 offered on this machine
const KERNEL_FLAGS2 = 0x5fd;
const EINTR = 4;
const EIO = 5;
const EAGAIN = 11;
const EACCES = 13;
const ENOENT = 2;
const ENOSYS = 38;
const ENODATA = 61;
const EPROTO = 71;

const attr = (ino: bigint) => ({ ino, size: 0n, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, mode: 0o100644, nlink: 1, uid: 0, gid: 0 });

function recordingLogger(): Logger & { errors: unknown[] } {
  const errors: unknown[] = [];
  const noop = (): void => {};
  const l = { debug: noop, info: noop, warn: noop, error: (o: unknown) => void errors.push(o), child: () => l, errors };
  return l as Logger & { errors: unknown[] };
}

async function started(fs: FuseFilesystem, opts: SessionOptions = {}, init = initIn(45, KERNEL_FLAGS, KERNEL_FLAGS2)) {
  const t = new FakeTransport();
  const s = new FuseSession(fs, t, opts);
  const negotiated = s.start();
  t.push(request(Opcode.INIT, 2n, init));
  return { t, s, negotiated: await negotiated, initReply: await t.replyTo(2n) };
}

function bit(name: keyof typeof CAPABILITY_BITS): number {
  return 2 ** CAPABILITY_BITS[name];
}

describe('INIT negotiation', () => {
  it('replies 7.38 with the requested ∩ offered flags, 1 MiB writes and FUSE_INIT_EXT', async () => {
    const fs: FuseFilesystem = { setlk: () => undefined, getlk: () => null };
    const { negotiated, initReply, t } = await started(fs);
    const p = initReply.payload;
    expect(initReply.error).toBe(0);
    expect(initReply.len).toBe(16 + 64);
    expect(p.readUInt32LE(0)).toBe(7);
    expect(p.readUInt32LE(4)).toBe(38);
    const flags = p.readUInt32LE(12);
    for (const c of ['asyncRead', 'posixLocks', 'bigWrites', 'maxPages', 'explicitInvalData', 'parallelDirops'] as const) {
      expect(flags & bit(c), c).not.toBe(0);
    }
    expect(flags & (1 << 16)).toBe(0); // never FUSE_WRITEBACK_CACHE
    expect(flags & bit('readdirplus')).toBe(0); // fs has no readdirplus
    expect(flags & bit('flockLocks')).toBe(0); // not asked for
    expect(flags & (1 << 30)).not.toBe(0); // INIT_EXT echoed
    expect(p.readUInt32LE(20)).toBe(1 << 20); // max_write
    expect(p.readUInt16LE(28)).toBe(256); // max_pages
    expect(p.readUInt32LE(8)).toBe(131072); // max_readahead echoed
    expect(negotiated.capabilities.has('posixLocks')).toBe(true);
    expect(negotiated.kernelCapabilities.has('hasExpireOnly')).toBe(true);
    expect(negotiated.minor).toBe(38);
    t.end();
  });

  it('honours what the kernel refuses and omits flags2 without FUSE_INIT_EXT', async () => {
    const fs: FuseFilesystem = { setlk: () => undefined };
    const offered = bit('asyncRead') | bit('bigWrites'); // no POSIX locks, no max_pages, no INIT_EXT
    const { negotiated, initReply, t } = await started(fs, {}, initIn(45, offered, 0xffffffff));
    const flags = initReply.payload.readUInt32LE(12);
    expect(flags).toBe(offered);
    expect(initReply.payload.readUInt32LE(32)).toBe(0); // flags2
    expect([...negotiated.capabilities].sort()).toEqual(['asyncRead', 'bigWrites']);
    expect(negotiated.maxWrite).toBe(128 * 1024); // 32 pages without FUSE_MAX_PAGES
    t.end();
  });

  it('lets the filesystem veto and add capabilities and lower limits', async () => {
    let seen: unknown;
    const fs: FuseFilesystem = {
      setlk: () => undefined,
      init(info) {
        seen = { minor: info.kernelMinor, locks: info.requested.has('posixLocks') };
        return { disable: ['asyncRead'], enable: ['flockLocks'], maxWrite: 65536 };
      },
    };
    const { negotiated, initReply, t } = await started(fs);
    expect(seen).toEqual({ minor: 45, locks: true });
    const flags = initReply.payload.readUInt32LE(12);
    expect(flags & bit('asyncRead')).toBe(0);
    expect(flags & bit('flockLocks')).not.toBe(0);
    expect(initReply.payload.readUInt32LE(20)).toBe(65536);
    expect(initReply.payload.readUInt16LE(28)).toBe(16);
    expect(negotiated.maxWrite).toBe(65536);
    t.end();
  });

  it('drops lock capabilities when the filesystem cannot answer them', async () => {
    const { negotiated, t } = await started({}, { capabilities: { posixLocks: true, flockLocks: true } });
    expect(negotiated.capabilities.has('posixLocks')).toBe(false);
    expect(negotiated.capabilities.has('flockLocks')).toBe(false);
    t.end();
  });

  it('refuses kernels older than 7.31 with EPROTO and a typed error', async () => {
    const t = new FakeTransport();
    const s = new FuseSession({}, t);
    const p = s.start();
    t.push(request(Opcode.INIT, 2n, initIn(26, KERNEL_FLAGS)));
    await expect(p).rejects.toMatchObject({ code: 'ERR_FUSE_INIT_FAILED' });
    expect((await t.replyTo(2n)).error).toBe(-EPROTO);
    t.end();
  });

  it('answers a newer major with 7 and waits for the next INIT', async () => {
    const t = new FakeTransport();
    const s = new FuseSession({}, t);
    const p = s.start();
    t.push(request(Opcode.INIT, 2n, initIn(0, 0, 0, 0, 8)));
    const first = await t.replyTo(2n);
    expect(first.payload.readUInt32LE(0)).toBe(7);
    t.push(request(Opcode.INIT, 4n, initIn(45, KERNEL_FLAGS)));
    expect((await p).minor).toBe(38);
    t.end();
  });

  it('refuses a second INIT once negotiated', async () => {
    const { t, s } = await started({});
    t.push(request(Opcode.INIT, 9n, initIn(45, 0)));
    expect((await t.replyTo(9n)).error).toBe(-EPROTO);
    expect(s.negotiated?.capabilities.has('asyncRead')).toBe(true);
    t.end();
  });

  it('answers requests before INIT with EPROTO', async () => {
    const t = new FakeTransport();
    const s = new FuseSession({ getattr: () => ({ attr: attr(1n) }) }, t);
    void s.start().catch(() => undefined);
    t.push(request(Opcode.GETATTR, 6n, Buffer.alloc(16)));
    expect((await t.replyTo(6n)).error).toBe(-EPROTO);
    t.end();
  });
});

describe('dispatch and errors', () => {
  it('answers ENOSYS for unknown opcodes and missing handlers, defaults for open/release/statfs', async () => {
    const { t } = await started({});
    t.push(request(200, 10n));
    t.push(request(Opcode.MKDIR, 12n, Buffer.concat([u32s(0o755, 0o22), cstr('d')])));
    t.push(request(Opcode.OPEN, 14n, u32s(2, 0), { nodeid: 5n }));
    t.push(request(Opcode.RELEASE, 16n, Buffer.alloc(24), { nodeid: 5n }));
    t.push(request(Opcode.STATFS, 18n));
    t.push(request(Opcode.GETXATTR, 20n, Buffer.concat([u32s(0, 0), cstr('user.x')])));
    expect((await t.replyTo(10n)).error).toBe(-ENOSYS);
    expect((await t.replyTo(12n)).error).toBe(-ENOSYS);
    const open = await t.replyTo(14n);
    expect(open.error).toBe(0);
    expect(open.payload.length).toBe(16);
    expect((await t.replyTo(16n)).error).toBe(0);
    const statfs = await t.replyTo(18n);
    expect(statfs.payload.length).toBe(80);
    expect(statfs.payload.readUInt32LE(44)).toBe(255);
    expect((await t.replyTo(20n)).error).toBe(-ENOSYS);
    t.end();
  });

  it('answers GETXATTR with ENODATA when asked to', async () => {
    const { t } = await started({}, { getxattr: 'ENODATA' });
    t.push(request(Opcode.GETXATTR, 20n, Buffer.concat([u32s(0, 0), cstr('security.capability')])));
    expect((await t.replyTo(20n)).error).toBe(-ENODATA);
    t.end();
  });

  it('maps FuseErrno and Node errno errors; other throws are EIO, logged once', async () => {
    const logger = recordingLogger();
    const fs: FuseFilesystem = {
      lookup(_ctx, _p, name) {
        if (name === 'missing') throw new FuseErrno('ENOENT');
        if (name === 'denied') return Promise.reject(Object.assign(new Error('nope'), { code: 'EACCES' }));
        throw new Error('handler bug');
      },
    };
    const { t, s } = await started(fs, { logger });
    t.push(request(Opcode.LOOKUP, 10n, cstr('missing')));
    t.push(request(Opcode.LOOKUP, 12n, cstr('denied')));
    for (let i = 0; i < 5; i++) t.push(request(Opcode.LOOKUP, 20n + BigInt(i) * 2n, cstr('bug')));
    expect((await t.replyTo(10n)).error).toBe(-ENOENT);
    expect((await t.replyTo(12n)).error).toBe(-EACCES);
    for (let i = 0; i < 5; i++) expect((await t.replyTo(20n + BigInt(i) * 2n)).error).toBe(-EIO);
    expect(logger.errors).toHaveLength(1);
    expect(s.stats().unexpectedErrors).toBe(5);
    t.end();
  });

  it('answers an undecodable request EIO when its header is readable, skips one that is not, and keeps serving', async () => {
    const logger = recordingLogger();
    const { t, s } = await started({ getattr: () => ({ attr: attr(1n) }) }, { logger });
    t.push(request(Opcode.LOOKUP, 30n, Buffer.from('unterminated')));
    const truncated = request(Opcode.GETATTR, 32n, Buffer.alloc(16));
    truncated.writeUInt32LE(1000, 0); // length field lies
    t.push(truncated);
    t.push(Buffer.from([1, 2, 3]));
    t.push(request(Opcode.GETATTR, 34n, Buffer.alloc(16)));
    expect((await t.replyTo(30n)).error).toBe(-EIO);
    expect((await t.replyTo(34n)).error).toBe(0);
    expect(s.stats().malformed).toBe(3);
    expect((await t.replyTo(32n)).error).toBe(-EIO);
    expect(t.replies()).toHaveLength(4); // INIT, 30, 32, 34: the 3-byte message got no reply
    expect(logger.errors.length).toBeGreaterThanOrEqual(1);
    t.end();
  });

  it('does not let a slow handler delay others', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fs: FuseFilesystem = {
      async getattr(_ctx, nodeid) {
        if (nodeid === 9n) await gate;
        return { attr: attr(nodeid) };
      },
    };
    const { t } = await started(fs);
    t.push(request(Opcode.GETATTR, 40n, Buffer.alloc(16), { nodeid: 9n }));
    t.push(request(Opcode.GETATTR, 42n, Buffer.alloc(16), { nodeid: 3n }));
    expect((await t.replyTo(42n)).error).toBe(0);
    expect(t.replies().some((r) => r.unique === 40n)).toBe(false);
    release();
    expect((await t.replyTo(40n)).error).toBe(0);
    t.end();
  });

  it('gives every write handler data of its own, intact while later WRITEs arrive', async () => {
    const kept: WriteRequest[] = [];
    const fs: FuseFilesystem = {
      write(_ctx, _n, req) {
        kept.push(req);
        return req.data.length;
      },
    };
    const { t } = await started(fs);
    const small = Buffer.alloc(4096, 0x61);
    const big = Buffer.alloc(200 * 1024, 0x62);
    t.push(request(Opcode.WRITE, 50n, writeIn(1n, 0n, small)));
    t.push(request(Opcode.WRITE, 52n, writeIn(1n, 0n, big)));
    t.push(request(Opcode.WRITE, 54n, writeIn(1n, 0n, Buffer.alloc(300 * 1024, 0x63))));
    t.push(request(Opcode.WRITE, 56n, writeIn(1n, 0n, Buffer.alloc(100, 0x64))));
    const r = await t.replyTo(56n);
    expect(r.payload.readUInt32LE(0)).toBe(100);
    expect((await t.replyTo(52n)).payload.readUInt32LE(0)).toBe(big.length);
    expect(kept.map((k) => k.data.length)).toEqual([4096, 200 * 1024, 300 * 1024, 100]);
    expect(kept[0]!.data.every((b) => b === 0x61)).toBe(true);
    expect(kept[1]!.data.every((b) => b === 0x62)).toBe(true);
    expect(kept[2]!.data.every((b) => b === 0x63)).toBe(true);
    t.end();
  });
});

describe('lookup counts', () => {
  it('counts entry replies, subtracts FORGET and BATCH_FORGET, ignores negative entries', async () => {
    const forgets: bigint[][] = [];
    const fs: FuseFilesystem = {
      lookup: (_c, _p, name) => (name === 'none' ? { nodeid: 0n, entryTimeoutSec: 5 } : { nodeid: 5n, attr: attr(5n), entryTimeoutSec: 1 }),
      forget: (nodeid, n, remaining) => void forgets.push([nodeid, n, remaining]),
    };
    const { t, s } = await started(fs);
    t.push(request(Opcode.LOOKUP, 10n, cstr('a')));
    t.push(request(Opcode.LOOKUP, 12n, cstr('a')));
    t.push(request(Opcode.LOOKUP, 14n, cstr('a')));
    t.push(request(Opcode.LOOKUP, 16n, cstr('none')));
    const neg = await t.replyTo(16n);
    expect(neg.error).toBe(0);
    expect(neg.payload.readBigUInt64LE(0)).toBe(0n);
    expect(neg.payload.readBigUInt64LE(16)).toBe(5n);
    await t.replyTo(14n);
    expect(s.lookupCount(5n)).toBe(3n);
    expect(s.lookupCount(0n)).toBe(0n);
    t.push(request(Opcode.FORGET, 18n, u64s(1n), { nodeid: 5n }));
    t.push(request(Opcode.BATCH_FORGET, 20n, Buffer.concat([u32s(1, 0), u64s(5n, 2n)])));
    t.push(request(Opcode.GETATTR, 22n, Buffer.alloc(16))); // a reply to wait on
    await t.replyTo(22n);
    expect(forgets).toEqual([
      [5n, 1n, 2n],
      [5n, 2n, 0n],
    ]);
    expect(s.lookupCount(5n)).toBe(0n);
    expect(t.replies().some((r) => r.unique === 18n || r.unique === 20n)).toBe(false); // forgets get no reply
    t.end();
  });

  it('does not count a lookup whose reply the kernel refused (interrupted away)', async () => {
    const forgets: bigint[] = [];
    const fs: FuseFilesystem = {
      lookup: () => ({ nodeid: 8n, attr: attr(8n) }),
      forget: (_n, _k, remaining) => void forgets.push(remaining),
    };
    const { t, s } = await started(fs);
    t.failWritesWith = 'ENOENT';
    t.push(request(Opcode.LOOKUP, 10n, cstr('a')));
    for (let i = 0; i < 50 && s.stats().staleReplies === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(s.stats().staleReplies).toBe(1);
    expect(s.lookupCount(8n)).toBe(0n);
    expect(forgets).toEqual([0n]);
    t.failWritesWith = undefined;
    t.end();
  });
});

describe('INTERRUPT', () => {
  it('aborts the running handler, which answers EINTR', async () => {
    let aborted = false;
    const fs: FuseFilesystem = {
      read: (ctx: RequestContext) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
    };
    const { t, s } = await started(fs);
    t.push(request(Opcode.READ, 100n, Buffer.alloc(40)));
    await new Promise((r) => setTimeout(r, 20));
    t.push(request(Opcode.INTERRUPT, 101n, u64s(100n)));
    expect((await t.replyTo(100n)).error).toBe(-EINTR);
    expect(aborted).toBe(true);
    expect(s.stats().interrupts).toBe(1);
    expect(t.replies().some((r) => r.unique === 101n)).toBe(false);
    t.end();
  });

  it('applies an interrupt that arrives before its request', async () => {
    const fs: FuseFilesystem = {
      getattr: (ctx) => (ctx.interrupted ? Promise.reject(new FuseErrno('EINTR')) : { attr: attr(1n) }),
    };
    const { t } = await started(fs);
    t.push(request(Opcode.INTERRUPT, 201n, u64s(200n)));
    await new Promise((r) => setImmediate(r));
    t.push(request(Opcode.GETATTR, 200n, Buffer.alloc(16)));
    expect((await t.replyTo(200n)).error).toBe(-EINTR);
    t.end();
  });

  it('answers EAGAIN to an interrupt whose request never shows up', async () => {
    const { t } = await started({});
    t.push(request(Opcode.INTERRUPT, 301n, u64s(300n)));
    const r = await t.replyTo(301n);
    expect(r.error).toBe(-EAGAIN);
    t.end();
  });
});

describe('session end and notifications', () => {
  it('refuses notifications before INIT and reports kernel ENOENT as not cached', async () => {
    const t0 = new FakeTransport();
    const s0 = new FuseSession({}, t0);
    await expect(s0.notifyInvalInode(1n)).rejects.toMatchObject({ code: 'ERR_FUSE_NOT_INITIALIZED' });

    const { t, s } = await started({});
    expect(await s.notifyInvalEntry(1n, 'db', { expireOnly: true })).toBe(true);
    const last = t.written[t.written.length - 1]!;
    expect(last.readInt32LE(4)).toBe(3);
    expect(last.readUInt32LE(28)).toBe(1); // expire-only: the kernel offered it
    t.failWritesWith = 'ENOENT';
    expect(await s.notifyInvalInode(9n, 0n, 4096n)).toBe(false);
    t.failWritesWith = 'EINVAL';
    await expect(s.notifyInvalInode(9n)).rejects.toMatchObject({ code: 'ERR_FUSE_NOTIFY_FAILED' });
    t.failWritesWith = undefined;
    t.end();
  });

  it('ends on ENODEV: aborts running handlers, calls destroy once, closes the transport', async () => {
    let destroyed = 0;
    let sawAbort = false;
    const fs: FuseFilesystem = {
      destroy: () => void destroyed++,
      setlk: (ctx) =>
        new Promise((_res, rej) =>
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            rej(new FuseErrno('EINTR'));
          }),
        ),
    };
    const { t, s } = await started(fs);
    t.push(request(Opcode.SETLKW, 70n, Buffer.alloc(48)));
    await new Promise((r) => setTimeout(r, 10));
    t.end();
    expect(await s.ended).toEqual({ reason: 'unmounted' });
    expect(sawAbort).toBe(true);
    expect(destroyed).toBe(1);
    expect(t.closed).toBe(true);
    expect(s.isRunning).toBe(false);
    await expect(s.notifyInvalInode(1n)).rejects.toMatchObject({ code: 'ERR_FUSE_SESSION_CLOSED' });
  });

  it('calls destroy on DESTROY and replies', async () => {
    let destroyed = 0;
    const { t, s } = await started({ destroy: () => void destroyed++ });
    t.push(request(Opcode.DESTROY, 80n));
    expect((await t.replyTo(80n)).error).toBe(0);
    t.end();
    await s.ended;
    expect(destroyed).toBe(1);
  });
});
