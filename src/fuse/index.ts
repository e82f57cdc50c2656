/**
 * litefs's internal FUSE layer: the kernel protocol spoken directly over
 * /dev/fuse (no libfuse). Not a published library: this surface is what
 * litefs and its tests use, and it changes with their needs. Protocol
 * encoding lives in protocol/, the request loop in session/, mounting in
 * mount/. A filesystem implements `FuseFilesystem` and is served by
 * `mount()`.
 */
export type { FuseFilesystem } from './filesystem.js';
// The vocabulary of FuseFilesystem's handlers, whole: a filesystem adding a handler needs its request and reply types.
export type * from './types.js';
export { FuseErrno, FuseMountError, FuseProtocolError } from './errors.js';

export type { RequestContext } from './session/context.js';
export { FuseSession } from './session/session.js';
export type { SessionEnd, SessionOptions } from './session/session.js';
export { DevFuseTransport } from './session/transport.js';
export type { FuseTransport, TransportSink } from './session/transport.js';
export { FuseReaderError } from './session/reader-error.js';
export type { ReaderStop } from './session/reader-threads.js';
export type { InitAdjust } from './session/negotiate.js';

export { mount } from './mount/mount.js';
export type { FuseMount, MountOptions } from './mount/mount.js';
export { clearFuseMounts } from './mount/unmount.js';
export type { ClearResult } from './mount/unmount.js';
export { fuseMountsAt, parseMountinfo } from './mount/mountinfo.js';

export { CAPABILITY_BITS } from './protocol/capabilities.js';
export { Opcode } from './protocol/opcodes.js';
export { FATTR, RENAME_FLAGS } from './protocol/flags.js';
export { decodeHeader, decodeRequest } from './protocol/decode.js';
export type { RequestBody } from './protocol/decode.js';
export { packDirents, packDirentsPlus } from './protocol/dirent.js';
