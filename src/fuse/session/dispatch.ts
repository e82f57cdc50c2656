import type { Capability } from '../protocol/capabilities.js';
import type { Logger } from '../../internal/index.js';
import { Errno, errnoName, errnoOf } from '../errors.js';
import type { FuseFilesystem } from '../filesystem.js';
import type { InHeader, RequestBody } from '../protocol/decode.js';
import { packDirents, packDirentsPlus } from '../protocol/dirent.js';
import {
  ATTR_OUT_SIZE,
  ENTRY_OUT_SIZE,
  LK_OUT_SIZE,
  OPEN_OUT_SIZE,
  OUT_HEADER_SIZE,
  STATFS_OUT_SIZE,
  encodeReply,
  encodeStatus,
  writeAttrOut,
  writeEntryOut,
  writeLkOut,
  writeOpenOut,
  writeOutHeader,
  writeStatfsOut,
} from '../protocol/encode.js';
import type { CreateReply, DirEntry, DirEntryPlus, EntryReply, MaybePromise, OpenReply } from '../types.js';
import { RequestContext } from './context.js';
import type { OnceLog } from './errorlog.js';
import type { Inflight } from './inflight.js';
import type { LookupCounts } from './lookups.js';
import type { SessionStats } from './stats.js';

/**
 * Where replies go. `onRejected` runs if the kernel did not take the reply
 * (the request was interrupted away, or the connection is gone); lookup
 * counts are raised before the reply is written and lowered again there,
 * so a FORGET the kernel sends as soon as it has the reply can never find a
 * count too low.
 */
export interface ReplySink {
  send(unique: bigint, chunks: Buffer[], onRejected?: () => void): void;
}

export interface DispatchDeps {
  lookups: LookupCounts;
  inflight: Inflight;
  onceLog: OnceLog;
  logger: Logger;
  debug: boolean;
  /** How GETXATTR is answered: ENOSYS (the kernel stops asking) or ENODATA ("no such attribute"). */
  getxattrErrno: number;
  stats: SessionStats;
  onDestroy: () => Promise<void>;
  /** Whether INIT granted a capability (false before INIT). */
  granted: (cap: Capability) => boolean;
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Turns decoded requests into filesystem calls and their results into
 * replies. Knows the wire format of replies; knows nothing about reading
 * the device or the lifetime of the session.
 */
export class Dispatcher {
  constructor(
    private readonly fs: FuseFilesystem,
    private readonly sink: ReplySink,
    private readonly d: DispatchDeps,
  ) {}

  dispatch(h: InHeader, body: RequestBody): void {
    const fs = this.fs;
    switch (body.op) {
      case 'interrupt':
        this.d.stats.interrupts++;
        this.d.inflight.interrupt(body.target, h.unique);
        return;
      case 'forget':
        this.forget(h.nodeid, body.nlookup);
        return;
      case 'batchForget':
        for (const f of body.items) this.forget(f.nodeid, f.nlookup);
        return;
      case 'notifyReply':
        return;
      case 'destroy':
        this.call(
          h,
          () => this.d.onDestroy(),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'lookup':
        if (!fs.lookup) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.lookup!(ctx, h.nodeid, body.name),
          (ctx, e) => this.entry(ctx, e),
        );
        return;
      case 'getattr':
        if (!fs.getattr) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.getattr!(ctx, h.nodeid, body.fh),
          (ctx, r) => this.payload(ctx, ATTR_OUT_SIZE, (b, o) => writeAttrOut(b, o, r)),
        );
        return;
      case 'setattr':
        if (!fs.setattr) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.setattr!(ctx, h.nodeid, body.req),
          (ctx, r) => this.payload(ctx, ATTR_OUT_SIZE, (b, o) => writeAttrOut(b, o, r)),
        );
        return;
      case 'readlink':
        if (!fs.readlink) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.readlink!(ctx, h.nodeid),
          (ctx, target) => this.data(ctx, typeof target === 'string' ? Buffer.from(target, 'utf8') : target),
        );
        return;
      case 'symlink':
        if (!fs.symlink) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.symlink!(ctx, h.nodeid, body.name, body.target),
          (ctx, e) => this.entry(ctx, e),
        );
        return;
      case 'mknod':
        if (!fs.mknod) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.mknod!(ctx, h.nodeid, body.name, body.req),
          (ctx, e) => this.entry(ctx, e),
        );
        return;
      case 'mkdir':
        if (!fs.mkdir) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.mkdir!(ctx, h.nodeid, body.name, body.req),
          (ctx, e) => this.entry(ctx, e),
        );
        return;
      case 'unlink':
        if (!fs.unlink) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.unlink!(ctx, h.nodeid, body.name),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'rmdir':
        if (!fs.rmdir) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.rmdir!(ctx, h.nodeid, body.name),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'rename':
        if (!fs.rename) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.rename!(ctx, h.nodeid, body.name, body.newParent, body.newName, body.flags),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'link':
        if (!fs.link) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.link!(ctx, body.oldNodeid, h.nodeid, body.newName),
          (ctx, e) => this.entry(ctx, e),
        );
        return;
      case 'open':
      case 'opendir': {
        const handler = body.op === 'open' ? fs.open : fs.opendir;
        // With no opendir handler and a kernel that allows it, ENOSYS makes
        // the kernel stop sending OPENDIR and RELEASEDIR altogether (SQLite
        // opens the directory on every journal sync).
        if (!handler && body.op === 'opendir' && this.d.granted('noOpendirSupport')) return this.enosys(h);
        if (!handler) {
          this.sink.send(h.unique, [encodeReply(h.unique, OPEN_OUT_SIZE, (b, o) => writeOpenOut(b, o, {}))]);
          return;
        }
        this.call(
          h,
          (ctx) => handler.call(fs, ctx, h.nodeid, body.req),
          (ctx, r: OpenReply) => this.payload(ctx, OPEN_OUT_SIZE, (b, o) => writeOpenOut(b, o, r)),
        );
        return;
      }
      case 'create':
        if (!fs.create) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.create!(ctx, h.nodeid, body.name, body.req),
          (ctx, r) => this.created(ctx, r),
        );
        return;
      case 'read':
        if (!fs.read) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.read!(ctx, h.nodeid, body.req),
          (ctx, data) => this.data(ctx, data.length > body.req.size ? data.subarray(0, body.req.size) : data),
        );
        return;
      case 'write':
        if (!fs.write) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.write!(ctx, h.nodeid, body.req),
          (ctx, n) =>
            this.payload(ctx, 8, (b, o) => {
              b.writeUInt32LE(n, o);
              b.writeUInt32LE(0, o + 4);
            }),
        );
        return;
      case 'flush':
        if (!fs.flush) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.flush!(ctx, h.nodeid, body.req),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'release':
        if (!fs.release) return this.ok(h);
        this.call(
          h,
          (ctx) => fs.release!(ctx, h.nodeid, body.req),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'releasedir':
        if (!fs.releasedir) return this.ok(h);
        this.call(
          h,
          (ctx) => fs.releasedir!(ctx, h.nodeid, body.req),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'fsync':
        if (!fs.fsync) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.fsync!(ctx, h.nodeid, body.req),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'fsyncdir':
        if (!fs.fsyncdir) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.fsyncdir!(ctx, h.nodeid, body.req),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'fallocate':
        if (!fs.fallocate) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.fallocate!(ctx, h.nodeid, body.req),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'readdir': {
        const req = body.req;
        if (fs.readdir) {
          this.call(
            h,
            (ctx) => fs.readdir!(ctx, h.nodeid, req),
            (ctx, list: readonly DirEntry[]) => this.data(ctx, packDirents(list, req.offset, req.size).payload),
          );
        } else if (fs.readdirplus) {
          // READDIRPLUS_AUTO lets the kernel fall back to plain READDIR.
          this.call(
            h,
            (ctx) => fs.readdirplus!(ctx, h.nodeid, req),
            (ctx, list: readonly DirEntry[]) => this.data(ctx, packDirents(list, req.offset, req.size).payload),
          );
        } else this.enosys(h);
        return;
      }
      case 'readdirplus': {
        const req = body.req;
        if (!fs.readdirplus) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.readdirplus!(ctx, h.nodeid, req),
          (ctx, list) => this.direntsPlus(ctx, list, req.offset, req.size),
        );
        return;
      }
      case 'statfs':
        if (!fs.statfs) {
          this.sink.send(h.unique, [encodeReply(h.unique, STATFS_OUT_SIZE, (b, o) => writeStatfsOut(b, o, {}))]);
          return;
        }
        this.call(
          h,
          (ctx) => fs.statfs!(ctx, h.nodeid),
          (ctx, r) => this.payload(ctx, STATFS_OUT_SIZE, (b, o) => writeStatfsOut(b, o, r)),
        );
        return;
      case 'access':
        if (!fs.access) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.access!(ctx, h.nodeid, body.mask),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'getlk': {
        const req = body.req;
        if (!fs.getlk) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.getlk!(ctx, h.nodeid, req),
          (ctx, conflict) =>
            this.payload(ctx, LK_OUT_SIZE, (b, o) =>
              writeLkOut(b, o, conflict ?? { type: 'unlock', start: req.lock.start, end: req.lock.end, pid: 0 }),
            ),
        );
        return;
      }
      case 'setlk':
        if (!fs.setlk) return this.enosys(h);
        this.call(
          h,
          (ctx) => fs.setlk!(ctx, h.nodeid, body.req, body.wait),
          (ctx) => this.status(ctx, 0),
        );
        return;
      case 'getxattr':
        this.error(h.unique, this.d.getxattrErrno);
        return;
      case 'listxattr':
      case 'setxattr':
      case 'removexattr':
      case 'unsupported':
      case 'init':
        this.enosys(h);
        return;
    }
  }

  private forget(nodeid: bigint, nlookup: bigint): void {
    const remaining = this.d.lookups.forget(nodeid, nlookup);
    if (!this.fs.forget) return;
    try {
      this.fs.forget(nodeid, nlookup, remaining);
    } catch (err) {
      this.d.onceLog.report('forget handler threw', err);
    }
  }

  private call<T>(h: InHeader, invoke: (ctx: RequestContext) => MaybePromise<T>, done: (ctx: RequestContext, v: T) => void): void {
    const ctx = new RequestContext(h);
    this.d.inflight.begin(ctx);
    let r: MaybePromise<T>;
    try {
      r = invoke(ctx);
    } catch (err) {
      this.fail(ctx, err);
      return;
    }
    if (isPromiseLike(r)) {
      (r as PromiseLike<T>).then(
        (v) => this.succeed(ctx, v, done),
        (err: unknown) => this.fail(ctx, err),
      );
    } else this.succeed(ctx, r, done);
  }

  private succeed<T>(ctx: RequestContext, v: T, done: (ctx: RequestContext, v: T) => void): void {
    this.d.inflight.end(ctx.unique);
    try {
      done(ctx, v);
    } catch (err) {
      // The handler returned something we cannot encode (a missing attr, a wrong type).
      this.d.onceLog.report(`invalid ${ctx.opName} reply from the filesystem`, err);
      this.error(ctx.unique, Errno.EIO!);
    }
  }

  private fail(ctx: RequestContext, err: unknown): void {
    this.d.inflight.end(ctx.unique);
    let errno = errnoOf(err);
    if (errno === undefined) {
      if (ctx.interrupted) errno = Errno.EINTR!;
      else {
        this.d.onceLog.report(`${ctx.opName} handler threw`, err, { nodeid: ctx.nodeid });
        errno = Errno.EIO!;
      }
    }
    this.error(ctx.unique, errno);
  }

  private enosys(h: InHeader): void {
    this.error(h.unique, Errno.ENOSYS!);
  }

  private ok(h: InHeader): void {
    this.sink.send(h.unique, [encodeStatus(h.unique, 0)]);
  }

  error(unique: bigint, errno: number): void {
    if (this.d.debug) this.d.logger.debug({ unique, errno: errnoName(errno) }, 'fuse reply error');
    this.d.stats.errorReplies++;
    this.sink.send(unique, [encodeStatus(unique, errno)]);
  }

  private status(ctx: RequestContext, errno: number): void {
    this.sink.send(ctx.unique, [encodeStatus(ctx.unique, errno)]);
  }

  private payload(ctx: RequestContext, size: number, fill: (b: Buffer, off: number) => void): void {
    this.sink.send(ctx.unique, [encodeReply(ctx.unique, size, fill)]);
  }

  private data(ctx: RequestContext, data: Uint8Array): void {
    const hdr = Buffer.allocUnsafe(OUT_HEADER_SIZE);
    writeOutHeader(hdr, OUT_HEADER_SIZE + data.length, 0, ctx.unique);
    const body = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    this.sink.send(ctx.unique, data.length === 0 ? [hdr] : [hdr, body]);
  }

  private entry(ctx: RequestContext, e: EntryReply): void {
    if (e.nodeid !== 0n && !e.attr) throw new TypeError(`entry reply for nodeid ${e.nodeid} has no attr`);
    const buf = encodeReply(ctx.unique, ENTRY_OUT_SIZE, (b, o) => writeEntryOut(b, o, e));
    if (e.nodeid === 0n) {
      this.sink.send(ctx.unique, [buf]);
      return;
    }
    this.d.lookups.add(e.nodeid);
    this.sink.send(ctx.unique, [buf], () => this.forget(e.nodeid, 1n));
  }

  private created(ctx: RequestContext, r: CreateReply): void {
    if (r.nodeid === 0n || !r.attr) throw new TypeError('create reply needs a non-zero nodeid and attr');
    const buf = encodeReply(ctx.unique, ENTRY_OUT_SIZE + OPEN_OUT_SIZE, (b, o) => {
      writeEntryOut(b, o, r);
      writeOpenOut(b, o + ENTRY_OUT_SIZE, r);
    });
    this.d.lookups.add(r.nodeid);
    this.sink.send(ctx.unique, [buf], () => this.forget(r.nodeid, 1n));
  }

  private direntsPlus(ctx: RequestContext, list: readonly DirEntryPlus[], offset: bigint, size: number): void {
    const { payload, count } = packDirentsPlus(list, offset, size);
    const hdr = Buffer.allocUnsafe(OUT_HEADER_SIZE);
    writeOutHeader(hdr, OUT_HEADER_SIZE + payload.length, 0, ctx.unique);
    // The kernel takes a reference for every entry with a node id, except "." and "..".
    const counted: bigint[] = [];
    for (let i = 0; i < count; i++) {
      const e = list[i]!;
      if (e.entry.nodeid !== 0n && e.name !== '.' && e.name !== '..') {
        if (!e.entry.attr) throw new TypeError(`readdirplus entry ${e.name} has nodeid ${e.entry.nodeid} but no attr`);
        counted.push(e.entry.nodeid);
      }
    }
    for (const n of counted) this.d.lookups.add(n);
    this.sink.send(ctx.unique, payload.length === 0 ? [hdr] : [hdr, payload], () => {
      for (const n of counted) this.forget(n, 1n);
    });
  }
}
