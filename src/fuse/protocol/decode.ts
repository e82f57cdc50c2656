import { FuseProtocolError } from '../errors.js';
import type {
  CreateRequest,
  FallocateRequest,
  FlushRequest,
  FsyncRequest,
  LockRequest,
  LockType,
  MkdirRequest,
  MknodRequest,
  OpenRequest,
  ReaddirRequest,
  ReadRequest,
  ReleasedirRequest,
  ReleaseRequest,
  SetattrRequest,
  WriteRequest,
} from '../types.js';
import {
  FATTR,
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  FSYNC_FDATASYNC,
  GETATTR_FH,
  LK_FLOCK,
  READ_LOCKOWNER,
  RELEASE_FLAGS,
  WRITE_FLAGS,
} from './flags.js';
import { Opcode, opcodeName } from './opcodes.js';
import { ArgReader } from './reader.js';

export const IN_HEADER_SIZE = 40;

/** struct fuse_in_header */
export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
  /** Length of trailing extensions in 8-byte units (7.38). */
  totalExtlen: number;
}

/** fuse_init_in, with flags and flags2 merged into one 64-bit value. */
export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: bigint;
}

export interface ForgetOne {
  nodeid: bigint;
  nlookup: bigint;
}

/** A decoded request body; `op` names the variant. */
export type RequestBody =
  | { op: 'init'; init: InitIn }
  | { op: 'destroy' }
  | { op: 'interrupt'; target: bigint }
  | { op: 'forget'; nlookup: bigint }
  | { op: 'batchForget'; items: ForgetOne[] }
  | { op: 'lookup'; name: string }
  | { op: 'getattr'; fh: bigint | undefined }
  | { op: 'setattr'; req: SetattrRequest }
  | { op: 'readlink' }
  | { op: 'symlink'; name: string; target: string }
  | { op: 'mknod'; name: string; req: MknodRequest }
  | { op: 'mkdir'; name: string; req: MkdirRequest }
  | { op: 'unlink'; name: string }
  | { op: 'rmdir'; name: string }
  | { op: 'rename'; name: string; newParent: bigint; newName: string; flags: number }
  | { op: 'link'; oldNodeid: bigint; newName: string }
  | { op: 'open'; req: OpenRequest }
  | { op: 'opendir'; req: OpenRequest }
  | { op: 'create'; name: string; req: CreateRequest }
  | { op: 'read'; req: ReadRequest }
  | { op: 'write'; req: WriteRequest }
  | { op: 'flush'; req: FlushRequest }
  | { op: 'release'; req: ReleaseRequest }
  | { op: 'releasedir'; req: ReleasedirRequest }
  | { op: 'fsync'; req: FsyncRequest }
  | { op: 'fsyncdir'; req: FsyncRequest }
  | { op: 'readdir'; req: ReaddirRequest }
  | { op: 'readdirplus'; req: ReaddirRequest }
  | { op: 'statfs' }
  | { op: 'access'; mask: number }
  | { op: 'getlk'; req: LockRequest }
  | { op: 'setlk'; req: LockRequest; wait: boolean }
  | { op: 'fallocate'; req: FallocateRequest }
  | { op: 'getxattr'; name: string; size: number }
  | { op: 'listxattr'; size: number }
  | { op: 'setxattr' }
  | { op: 'removexattr' }
  | { op: 'notifyReply' }
  | { op: 'unsupported' };

export interface DecodedRequest {
  header: InHeader;
  body: RequestBody;
}

/**
 * Decodes the 40-byte header of a message of `n` bytes read from /dev/fuse.
 * Throws FuseProtocolError (with `unique` when it could be read) if the
 * message is shorter than a header or its length field disagrees with `n`.
 */
export function decodeHeader(buf: Buffer, n: number): InHeader {
  if (n < IN_HEADER_SIZE || buf.length < IN_HEADER_SIZE) {
    throw new FuseProtocolError(`request: message of ${n} bytes is shorter than the ${IN_HEADER_SIZE}-byte header`);
  }
  const len = buf.readUInt32LE(0);
  const opcode = buf.readUInt32LE(4);
  const unique = buf.readBigUInt64LE(8);
  if (len !== n) {
    throw new FuseProtocolError(`request ${opcodeName(opcode)}: header len ${len} does not match the ${n} bytes read`, { unique, opcode });
  }
  const totalExtlen = buf.readUInt16LE(36);
  if (IN_HEADER_SIZE + totalExtlen * 8 > len) {
    throw new FuseProtocolError(`request ${opcodeName(opcode)}: total_extlen ${totalExtlen} runs past the ${len}-byte message`, {
      unique,
      opcode,
    });
  }
  return {
    len,
    opcode,
    unique,
    nodeid: buf.readBigUInt64LE(16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    totalExtlen,
  };
}

/**
 * Decodes one complete request. WRITE data (and nothing else) is returned as
 * a view into `buf`; the caller copies it or hands the buffer over before
 * reusing `buf`. Throws FuseProtocolError on any inconsistency.
 */
export function decodeRequest(buf: Buffer, n: number): DecodedRequest {
  const header = decodeHeader(buf, n);
  const r = new ArgReader(buf, IN_HEADER_SIZE, header.len - header.totalExtlen * 8, opcodeName(header.opcode), header);
  return { header, body: decodeBody(header.opcode, r) };
}

function lockType(t: number, r: ArgReader): LockType {
  if (t === F_RDLCK) return 'read';
  if (t === F_WRLCK) return 'write';
  if (t === F_UNLCK) return 'unlock';
  return r.fail(`lk.type is ${t}, expected 0 (F_RDLCK), 1 (F_WRLCK) or 2 (F_UNLCK)`);
}

function decodeLock(r: ArgReader): LockRequest {
  const fh = r.u64('fh');
  const owner = r.u64('owner');
  const start = r.u64('lk.start');
  const end = r.u64('lk.end');
  const type = lockType(r.u32('lk.type'), r);
  const pid = r.u32('lk.pid');
  const lkFlags = r.u32('lk_flags');
  return { fh, owner, lock: { type, start, end, pid }, flock: (lkFlags & LK_FLOCK) !== 0 };
}

function decodeSetattr(r: ArgReader): SetattrRequest {
  const valid = r.u32('valid');
  r.skip(4, 'padding');
  const fh = r.u64('fh');
  const size = r.u64('size');
  const lockOwner = r.u64('lock_owner');
  const atime = r.u64('atime');
  const mtime = r.u64('mtime');
  const ctime = r.u64('ctime');
  const atimensec = r.u32('atimensec');
  const mtimensec = r.u32('mtimensec');
  const ctimensec = r.u32('ctimensec');
  const mode = r.u32('mode');
  r.skip(4, 'unused4');
  const uid = r.u32('uid');
  const gid = r.u32('gid');
  r.skip(4, 'unused5');
  const req: SetattrRequest = { valid, killSuidgid: (valid & FATTR.KILL_SUIDGID) !== 0 };
  if (valid & FATTR.FH) req.fh = fh;
  if (valid & FATTR.MODE) req.mode = mode;
  if (valid & FATTR.UID) req.uid = uid;
  if (valid & FATTR.GID) req.gid = gid;
  if (valid & FATTR.SIZE) req.size = size;
  if (valid & FATTR.ATIME) req.atimeNs = valid & FATTR.ATIME_NOW ? 'now' : atime * 1_000_000_000n + BigInt(atimensec);
  if (valid & FATTR.MTIME) req.mtimeNs = valid & FATTR.MTIME_NOW ? 'now' : mtime * 1_000_000_000n + BigInt(mtimensec);
  if (valid & FATTR.CTIME) req.ctimeNs = ctime * 1_000_000_000n + BigInt(ctimensec);
  if (valid & FATTR.LOCKOWNER) req.lockOwner = lockOwner;
  return req;
}

function decodeBody(opcode: number, r: ArgReader): RequestBody {
  switch (opcode) {
    case Opcode.INIT: {
      const major = r.u32('major');
      const minor = r.u32('minor');
      const maxReadahead = r.u32('max_readahead');
      const flags = r.u32('flags');
      // flags2 exists from 7.36 and is meaningful only with FUSE_INIT_EXT (bit 30).
      const flags2 = r.remaining >= 4 && flags & (1 << 30) ? r.u32('flags2') : 0;
      return { op: 'init', init: { major, minor, maxReadahead, flags: (BigInt(flags2) << 32n) | BigInt(flags) } };
    }
    case Opcode.DESTROY:
      return { op: 'destroy' };
    case Opcode.INTERRUPT:
      return { op: 'interrupt', target: r.u64('unique') };
    case Opcode.FORGET:
      return { op: 'forget', nlookup: r.u64('nlookup') };
    case Opcode.BATCH_FORGET: {
      const count = r.u32('count');
      r.skip(4, 'dummy');
      r.need(count * 16, `${count} forget entries`);
      const items: ForgetOne[] = [];
      for (let i = 0; i < count; i++) items.push({ nodeid: r.u64('nodeid'), nlookup: r.u64('nlookup') });
      return { op: 'batchForget', items };
    }
    case Opcode.LOOKUP:
      return { op: 'lookup', name: r.cstring('name') };
    case Opcode.GETATTR: {
      const flags = r.u32('getattr_flags');
      r.skip(4, 'dummy');
      const fh = r.u64('fh');
      return { op: 'getattr', fh: flags & GETATTR_FH ? fh : undefined };
    }
    case Opcode.SETATTR:
      return { op: 'setattr', req: decodeSetattr(r) };
    case Opcode.READLINK:
      return { op: 'readlink' };
    case Opcode.SYMLINK: {
      const name = r.cstring('name');
      return { op: 'symlink', name, target: r.cstring('target') };
    }
    case Opcode.MKNOD: {
      const mode = r.u32('mode');
      const rdev = r.u32('rdev');
      const umask = r.u32('umask');
      r.skip(4, 'padding');
      return { op: 'mknod', req: { mode, rdev, umask }, name: r.cstring('name') };
    }
    case Opcode.MKDIR: {
      const mode = r.u32('mode');
      const umask = r.u32('umask');
      return { op: 'mkdir', req: { mode, umask }, name: r.cstring('name') };
    }
    case Opcode.UNLINK:
      return { op: 'unlink', name: r.cstring('name') };
    case Opcode.RMDIR:
      return { op: 'rmdir', name: r.cstring('name') };
    case Opcode.RENAME: {
      const newParent = r.u64('newdir');
      const name = r.cstring('oldname');
      return { op: 'rename', newParent, name, newName: r.cstring('newname'), flags: 0 };
    }
    case Opcode.RENAME2: {
      const newParent = r.u64('newdir');
      const flags = r.u32('flags');
      r.skip(4, 'padding');
      const name = r.cstring('oldname');
      return { op: 'rename', newParent, name, newName: r.cstring('newname'), flags };
    }
    case Opcode.LINK: {
      const oldNodeid = r.u64('oldnodeid');
      return { op: 'link', oldNodeid, newName: r.cstring('newname') };
    }
    case Opcode.OPEN:
    case Opcode.OPENDIR: {
      const flags = r.u32('flags');
      const openFlags = r.u32('open_flags');
      return { op: opcode === Opcode.OPEN ? 'open' : 'opendir', req: { flags, openFlags } };
    }
    case Opcode.CREATE: {
      const flags = r.u32('flags');
      const mode = r.u32('mode');
      const umask = r.u32('umask');
      const openFlags = r.u32('open_flags');
      return { op: 'create', req: { flags, mode, umask, openFlags }, name: r.cstring('name') };
    }
    case Opcode.READ:
    case Opcode.READDIR:
    case Opcode.READDIRPLUS: {
      const fh = r.u64('fh');
      const offset = r.u64('offset');
      const size = r.u32('size');
      const readFlags = r.u32('read_flags');
      const lockOwner = r.u64('lock_owner');
      const flags = r.u32('flags');
      if (opcode === Opcode.READ) {
        const req: ReadRequest = { fh, offset, size, flags, readFlags };
        if (readFlags & READ_LOCKOWNER) req.lockOwner = lockOwner;
        return { op: 'read', req };
      }
      return { op: opcode === Opcode.READDIR ? 'readdir' : 'readdirplus', req: { fh, offset, size } };
    }
    case Opcode.WRITE: {
      const fh = r.u64('fh');
      const offset = r.u64('offset');
      const size = r.u32('size');
      const writeFlags = r.u32('write_flags');
      const lockOwner = r.u64('lock_owner');
      const flags = r.u32('flags');
      r.skip(4, 'padding');
      const data = r.bytes(size, `${size} bytes of write data`);
      const req: WriteRequest = { fh, offset, data, flags, writeFlags, cached: (writeFlags & WRITE_FLAGS.CACHE) !== 0 };
      if (writeFlags & WRITE_FLAGS.LOCKOWNER) req.lockOwner = lockOwner;
      return { op: 'write', req };
    }
    case Opcode.FLUSH: {
      const fh = r.u64('fh');
      r.skip(8, 'unused/padding');
      return { op: 'flush', req: { fh, lockOwner: r.u64('lock_owner') } };
    }
    case Opcode.RELEASE: {
      const fh = r.u64('fh');
      const flags = r.u32('flags');
      const releaseFlags = r.u32('release_flags');
      const lockOwner = r.u64('lock_owner');
      const flockUnlock = (releaseFlags & RELEASE_FLAGS.FLOCK_UNLOCK) !== 0;
      const req: ReleaseRequest = { fh, flags, releaseFlags, flockUnlock };
      if (flockUnlock) req.lockOwner = lockOwner;
      return { op: 'release', req };
    }
    case Opcode.RELEASEDIR: {
      const fh = r.u64('fh');
      return { op: 'releasedir', req: { fh, flags: r.u32('flags') } };
    }
    case Opcode.FSYNC:
    case Opcode.FSYNCDIR: {
      const fh = r.u64('fh');
      const fsyncFlags = r.u32('fsync_flags');
      return { op: opcode === Opcode.FSYNC ? 'fsync' : 'fsyncdir', req: { fh, datasync: (fsyncFlags & FSYNC_FDATASYNC) !== 0 } };
    }
    case Opcode.STATFS:
      return { op: 'statfs' };
    case Opcode.ACCESS:
      return { op: 'access', mask: r.u32('mask') };
    case Opcode.GETLK:
      return { op: 'getlk', req: decodeLock(r) };
    case Opcode.SETLK:
    case Opcode.SETLKW:
      return { op: 'setlk', req: decodeLock(r), wait: opcode === Opcode.SETLKW };
    case Opcode.FALLOCATE: {
      const fh = r.u64('fh');
      const offset = r.u64('offset');
      const length = r.u64('length');
      return { op: 'fallocate', req: { fh, offset, length, mode: r.u32('mode') } };
    }
    case Opcode.GETXATTR: {
      const size = r.u32('size');
      r.skip(4, 'padding');
      return { op: 'getxattr', size, name: r.cstring('name') };
    }
    case Opcode.LISTXATTR:
      return { op: 'listxattr', size: r.u32('size') };
    case Opcode.SETXATTR:
      return { op: 'setxattr' };
    case Opcode.REMOVEXATTR:
      return { op: 'removexattr' };
    case Opcode.NOTIFY_REPLY:
      return { op: 'notifyReply' };
    default:
      return { op: 'unsupported' };
  }
}
