/**
 * litefs-ts FUSE library: the kernel protocol spoken directly over
 * /dev/fuse (no libfuse). Protocol encoding lives in protocol/, the request
 * loop in session/, mounting in mount/. A filesystem implements
 * `FuseFilesystem` and is served by `mount()`.
 */
export type { FuseFilesystem } from './filesystem.js';
export type * from './types.js';
export { Errno, FuseErrno, FuseMountError, FuseProtocolError, FuseSessionError, errnoName, errnoOf } from './errors.js';
export type { ErrnoName, FuseMountErrorCode } from './errors.js';

export { RequestContext } from './session/context.js';
export { FuseSession } from './session/session.js';
export type { InvalEntryOptions, SessionEnd, SessionEndReason, SessionOptions } from './session/session.js';
export type { SessionStats } from './session/stats.js';
export { DevFuseTransport } from './session/transport.js';
export type { FuseTransport, TransportSink } from './session/transport.js';
export { FuseReaderError } from './session/reader-error.js';
export type { FuseReaderErrorCode } from './session/reader-error.js';
export type { ReaderStop, ThreadReadSink, ThreadReaderOptions } from './session/reader-threads.js';
export { MAX_WRITE_LIMIT, MIN_KERNEL_MINOR, PROTOCOL_MAJOR, PROTOCOL_MINOR } from './session/negotiate.js';
export type { InitAdjust, InitInfo, Negotiated } from './session/negotiate.js';

export { FuseMount, mount } from './mount/mount.js';
export type { MountOptions, UnmountOptions } from './mount/mount.js';
export { clearFuseMounts, umount } from './mount/unmount.js';
export type { ClearResult } from './mount/unmount.js';
export { abortConnection, FUSECTL_DIR } from './mount/fusectl.js';
export { fuseMountsAt, isFuseEntry, parseMountinfo, readMountinfo } from './mount/mountinfo.js';
export type { MountEntry } from './mount/mountinfo.js';

export { CAPABILITY_BITS, capabilitiesOf, flagsOf } from './protocol/capabilities.js';
export type { Capability } from './protocol/capabilities.js';
export { Opcode, NotifyCode, opcodeName } from './protocol/opcodes.js';
export type { OpcodeName } from './protocol/opcodes.js';
export { FATTR, FOPEN, F_RDLCK, F_UNLCK, F_WRLCK, LOCK_END_MAX, RENAME_FLAGS, ROOT_ID } from './protocol/flags.js';
export { decodeHeader, decodeRequest, IN_HEADER_SIZE } from './protocol/decode.js';
export type { DecodedRequest, InHeader, InitIn, RequestBody } from './protocol/decode.js';
export { packDirents, packDirentsPlus } from './protocol/dirent.js';
