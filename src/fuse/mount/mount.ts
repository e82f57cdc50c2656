import fs from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger, withTimeout, type Logger } from '../../internal/index.js';
import { FuseMountError } from '../errors.js';
import type { FuseFilesystem } from '../filesystem.js';
import { readBufferSize, type Negotiated } from '../session/negotiate.js';
import { FuseSession, checkSessionOptions, type InvalEntryOptions, type SessionEnd, type SessionOptions } from '../session/session.js';
import type { SessionStats } from '../session/stats.js';
import { DevFuseTransport } from '../session/transport.js';
import { safeLogger } from '../session/logsafe.js';
import { describeResult, runCommand } from './command.js';
import { abortConnection } from './fusectl.js';
import { fuseMountsAt } from './mountinfo.js';
import { register, release, reserve } from './registry.js';
import { clearFuseMounts, umount } from './unmount.js';

export interface MountOptions extends SessionOptions {
  /** Source shown in mount tables (the "device"). Default "fusets". */
  fsname?: string;
  /** Type suffix: the mount's type is fuse.<subtype>. Default "fusets". */
  subtype?: string;
  /** Let users other than root use the mount. */
  allowOther?: boolean;
  /** Let the kernel check permissions from the mode bits (off: the filesystem decides). */
  defaultPermissions?: boolean;
  /**
   * A FUSE mount already at the path that this process does not serve:
   * 'clear' (default) unmounts it first (aborting its connection if it
   * hangs), 'error' fails with ERR_FUSE_ALREADY_MOUNTED.
   */
  existingMount?: 'clear' | 'error';
  /** Default /dev/fuse. */
  devicePath?: string;
  /** Time allowed for mount(8) and for INIT; default 10 s. */
  mountTimeoutMs?: number;
  /**
   * Threads reading /dev/fuse, 1-8. Default 1: a thread re-arms its read as
   * soon as it has handed a message over, so a second one added no round
   * trips worth its V8 isolate (native-notes/fuse.md §8).
   */
  workerThreads?: number;
  /**
   * If the process exits while still mounted, the connection is always
   * aborted (the process could not exit otherwise: see registry.ts). With
   * this (default true) the mount is also detached; false leaves it behind
   * disconnected, as a crash would.
   */
  unmountOnExit?: boolean;
}

export interface UnmountOptions {
  /** After a lazy unmount of a busy mount, how long users may keep it before the connection is aborted. Default 2000 ms. */
  graceMs?: number;
}

const NAME_RE = /^[A-Za-z0-9._+-]+$/;

function checkName(field: string, v: string): void {
  if (!NAME_RE.test(v) || v.length > 64) {
    throw new FuseMountError('ERR_FUSE_BAD_OPTION', `${field} must be 1-64 characters of [A-Za-z0-9._+-], got ${JSON.stringify(v)}`);
  }
}

function checkWorkerThreads(v: number | undefined): number {
  const n = v ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new FuseMountError('ERR_FUSE_BAD_OPTION', `workerThreads must be an integer from 1 to 8, got ${String(n)}`);
  }
  return n;
}

/**
 * A mounted filesystem: the session serving it plus the mountpoint's
 * lifecycle. Obtained from `mount()`.
 */
export class FuseMount {
  private unmounting: Promise<void> | undefined;

  /** @internal */
  constructor(
    readonly mountpoint: string,
    readonly session: FuseSession,
    /** The connection number (device minor): /sys/fs/fuse/connections/<connection>. */
    readonly connection: number | undefined,
    private readonly logger: Logger,
  ) {}

  /** Settles (never rejects) when the session ends, however it ends. */
  get ended(): Promise<SessionEnd> {
    return this.session.ended;
  }

  get negotiated(): Negotiated {
    return this.session.negotiated!;
  }

  /** True until the session has ended. */
  get isMounted(): boolean {
    return this.session.isRunning;
  }

  lookupCount(nodeid: bigint): bigint {
    return this.session.lookupCount(nodeid);
  }

  stats(): SessionStats {
    return this.session.stats();
  }

  /** See FuseSession.notifyInvalInode. */
  notifyInvalInode(nodeid: bigint, offset = 0n, length = 0n): Promise<boolean> {
    return this.session.notifyInvalInode(nodeid, offset, length);
  }

  /** See FuseSession.notifyInvalEntry. */
  notifyInvalEntry(parent: bigint, name: string, opts?: InvalEntryOptions): Promise<boolean> {
    return this.session.notifyInvalEntry(parent, name, opts);
  }

  notifyDelete(parent: bigint, child: bigint, name: string): Promise<boolean> {
    return this.session.notifyDelete(parent, child, name);
  }

  notifyStore(nodeid: bigint, offset: bigint, data: Uint8Array): Promise<boolean> {
    return this.session.notifyStore(nodeid, offset, data);
  }

  /**
   * Unmounts and waits for the session to end. A busy mount is detached
   * lazily; if it is still in use after `graceMs`, its connection is
   * aborted. Idempotent; resolves at once if the session already ended.
   */
  unmount(opts: UnmountOptions = {}): Promise<void> {
    this.unmounting ??= this.doUnmount(opts.graceMs ?? 2000);
    return this.unmounting;
  }

  /** Same as unmount(). */
  close(): Promise<void> {
    return this.unmount();
  }

  private async doUnmount(graceMs: number): Promise<void> {
    if (!this.session.isRunning) {
      await this.session.ended;
      return;
    }
    const r = await umount(this.mountpoint);
    if (r.code !== 0) {
      this.logger.warn({ mountpoint: this.mountpoint, umount: describeResult(r) }, 'fuse: unmount failed; detaching lazily');
      await umount(this.mountpoint, { lazy: true });
    }
    if (await settlesWithin(this.session.ended, r.code === 0 ? 5000 : graceMs)) return;
    if (this.connection !== undefined) await abortConnection(this.connection, this.logger);
    if (await settlesWithin(this.session.ended, 5000)) return;
    throw new FuseMountError('ERR_FUSE_UNMOUNT_FAILED', `fuse: session at ${this.mountpoint} did not end after unmount and abort`);
  }
}

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function resolveMountpoint(mountpoint: string): Promise<string> {
  if (typeof mountpoint !== 'string' || mountpoint === '') {
    throw new FuseMountError('ERR_FUSE_BAD_OPTION', `mountpoint must be a non-empty path, got ${JSON.stringify(mountpoint)}`);
  }
  const abs = path.resolve(mountpoint);
  if (abs === '/') throw new FuseMountError('ERR_FUSE_BAD_OPTION', 'mountpoint must not be /');
  // Resolve symlinks in the parent only: touching the mountpoint itself could hang on a dead FUSE mount.
  try {
    return path.join(await realpath(path.dirname(abs)), path.basename(abs));
  } catch (err) {
    throw new FuseMountError('ERR_FUSE_MOUNTPOINT_MISSING', `mountpoint ${abs}: parent directory does not exist`, { cause: err });
  }
}

async function checkDirectory(mp: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await stat(mp);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') throw new FuseMountError('ERR_FUSE_MOUNTPOINT_MISSING', `mountpoint ${mp} does not exist`, { cause: err });
    if (code === 'ENOTCONN')
      throw new FuseMountError('ERR_FUSE_STALE_MOUNT', `mountpoint ${mp} is a disconnected mount that could not be cleared`, {
        cause: err,
      });
    throw new FuseMountError('ERR_FUSE_MOUNTPOINT_NOT_DIR', `mountpoint ${mp}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) throw new FuseMountError('ERR_FUSE_MOUNTPOINT_NOT_DIR', `mountpoint ${mp} is not a directory`);
}

function openDevice(devicePath: string): Promise<number> {
  // libuv opens with O_CLOEXEC: no child inherits the device except mount(8), which gets it explicitly.
  return new Promise((resolve, reject) => {
    fs.open(devicePath, 'r+', (err, fd) => {
      if (!err) return resolve(fd);
      if (err.code === 'ENOENT' || err.code === 'ENXIO' || err.code === 'ENODEV') {
        reject(
          new FuseMountError(
            'ERR_FUSE_NO_DEVICE',
            `FUSE device ${devicePath} is missing (${err.code}): load the fuse module or pass --device /dev/fuse to the container`,
            { cause: err },
          ),
        );
      } else if (err.code === 'EACCES' || err.code === 'EPERM') {
        reject(new FuseMountError('ERR_FUSE_DEVICE_DENIED', `cannot open FUSE device ${devicePath} (${err.code})`, { cause: err }));
      } else reject(new FuseMountError('ERR_FUSE_NO_DEVICE', `cannot open FUSE device ${devicePath}: ${err.message}`, { cause: err }));
    });
  });
}

/**
 * Mounts `filesystem` at `mountpoint` and serves it from this process until
 * unmounted. Resolves after INIT, so the mount is usable at once.
 *
 * Sequence: check root and options; clear FUSE mounts left at the path
 * (found through mountinfo, never by touching the path); check the path is a
 * directory; open /dev/fuse; run `mount -i -t fuse.<subtype> -o
 * fd=3,rootmode=40000,user_id=0,group_id=0[,allow_other][,default_permissions]
 * <fsname> <mountpoint>` with the device as the child's fd 3; start the reader threads.
 */
export async function mount(mountpoint: string, filesystem: FuseFilesystem, opts: MountOptions = {}): Promise<FuseMount> {
  const logger = opts.logger ? safeLogger(opts.logger) : silentLogger;
  const fsname = opts.fsname ?? 'fusets';
  const subtype = opts.subtype ?? 'fusets';
  checkName('fsname', fsname);
  checkName('subtype', subtype);
  // Bad options fail here, before anything is mounted.
  const { maxWrite } = checkSessionOptions(opts);
  const workerThreads = checkWorkerThreads(opts.workerThreads);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new FuseMountError('ERR_FUSE_NOT_ROOT', `mounting FUSE needs root (running as uid ${process.getuid()})`);
  }
  const mp = await resolveMountpoint(mountpoint);
  if (!reserve(mp))
    throw new FuseMountError('ERR_FUSE_ALREADY_MOUNTED', `mountpoint ${mp} is already mounted (or being mounted) by this process`);
  let registered = false;
  try {
    const existing = await fuseMountsAt(mp);
    if (existing.length > 0) {
      const what = existing.map((e) => `${e.fstype} ${e.source} (connection ${e.minor})`).join(', ');
      if (opts.existingMount === 'error') {
        throw new FuseMountError('ERR_FUSE_ALREADY_MOUNTED', `mountpoint ${mp} already has a FUSE mount: ${what}`);
      }
      logger.warn({ mountpoint: mp, existing: what }, 'fuse: clearing an earlier FUSE mount at the mountpoint');
      await clearFuseMounts(mp, { logger });
    }
    await checkDirectory(mp);
    const fd = await openDevice(opts.devicePath ?? '/dev/fuse');
    const timeoutMs = opts.mountTimeoutMs ?? 10_000;
    const mountOpts = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0'];
    if (opts.allowOther) mountOpts.push('allow_other');
    if (opts.defaultPermissions) mountOpts.push('default_permissions');
    const r = await runCommand('mount', ['-i', '-t', `fuse.${subtype}`, '-o', mountOpts.join(','), fsname, mp], {
      extraFds: [fd],
      timeoutMs,
    });
    if (r.code !== 0) {
      fs.closeSync(fd);
      throw new FuseMountError('ERR_FUSE_MOUNT_FAILED', `mount of ${fsname} at ${mp} failed: ${describeResult(r)}`);
    }
    const transport = new DevFuseTransport(fd, { threads: workerThreads, bufSize: readBufferSize(maxWrite) });
    const session = new FuseSession(filesystem, transport, opts);
    const entries = await fuseMountsAt(mp);
    const connection = entries[entries.length - 1]?.minor;
    try {
      await withTimeout(
        session.start(),
        timeoutMs,
        () => new FuseMountError('ERR_FUSE_INIT_FAILED', `fuse: no INIT from the kernel within ${timeoutMs} ms`),
      );
    } catch (err) {
      // Unmounting needs no INIT reply (umount -c), and ends the session's reads.
      await clearFuseMounts(mp, { logger }).catch(() => undefined);
      await settlesWithin(session.ended, 5000);
      throw err;
    }
    const m = new FuseMount(mp, session, connection, logger);
    register(m, opts.unmountOnExit ?? true);
    registered = true;
    void session.ended.then(async (end) => {
      release(mp, m);
      if (end.reason === 'error') {
        // Nobody reads the device any more: without this the mount would hang its users.
        logger.error({ mountpoint: mp, err: end.error }, 'fuse: session failed; removing the mount');
        await clearFuseMounts(mp, { logger }).catch((e: unknown) => logger.error({ err: e }, 'fuse: could not remove the failed mount'));
      }
    });
    logger.info({ mountpoint: mp, fsname, subtype, connection, workerThreads }, 'fuse: mounted');
    return m;
  } finally {
    if (!registered) release(mp);
  }
}
