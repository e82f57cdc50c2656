import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import fsx from 'fs-native-extensions';
import { isErrno, sleep, type Logger } from '../internal/index.js';
import { LockError, type ClientLocks, type JournalKind, type ReleaseLocks } from '../store/index.js';

/** SQLite's lock bytes (os_unix.c, wal.c). */
const PENDING = 0x4000_0000;
const RESERVED = PENDING + 1;
const SHARED_FIRST = PENDING + 2;
const SHARED_SIZE = 510;
/** WAL_WRITE_LOCK .. READ4 in the wal-index: 120 (WRITE), 121 (CKPT), 122 (RECOVER), 123-127 (READ0-4). */
const SHM_WRITE = 120;
const SHM_LOCKS = 8;
const SHM_DMS = 128;

/** Polling interval bounds while a lock is held by a client: short first (transactions are short), then backing off. */
const FIRST_POLL_MS = 0.2;
const MAX_POLL_MS = 5;

interface Held {
  fh: FileHandle;
  start: number;
  length: number;
}

/**
 * SQLite clients' locks, taken by the daemon through its own mount.
 *
 * The mount does not ask for FUSE_POSIX_LOCKS, so the kernel keeps every
 * fcntl lock itself (a read transaction costs no round trip to the
 * daemon), and locks taken on the mount's files — by applications, and by
 * the daemon here through descriptors it opened on the mount — all meet in
 * the kernel's lock lists. Open file description (OFD) locks are used so
 * the daemon's locks never merge with a process-wide POSIX owner.
 *
 * Taking them: non-blocking attempts (F_OFD_SETLK never sends a request to
 * the daemon, so the thread that serves the mount may make them), retried
 * with a short backoff, in SQLite's order — a writer first, so it can
 * finish; then PENDING, which stops new readers; then the readers' range
 * once they drain. The descriptors are opened (asynchronously: the open
 * is a request this process answers) on first use and kept.
 */
export class MountLocks implements ClientLocks {
  private readonly files = new Map<string, FileHandle>();

  constructor(
    private readonly mountDir: string,
    private readonly log: Logger,
  ) {}

  async exclusive(db: string, kind: JournalKind, signal: AbortSignal): Promise<ReleaseLocks> {
    const held: Held[] = [];
    try {
      const dbFile = await this.file(db, 'database');
      if (kind === 'rollback') {
        await this.take(db, held, dbFile, RESERVED, 1, false, signal, 'RESERVED');
        await this.take(db, held, dbFile, PENDING, 1, false, signal, 'PENDING');
        await this.take(db, held, dbFile, SHARED_FIRST, SHARED_SIZE, false, signal, 'SHARED');
      } else {
        // WAL connections hold SHARED on the database for as long as they
        // are open; PENDING stops new ones, the wal-index locks stop
        // transactions (a writer first, checkpoints, then readers).
        await this.take(db, held, dbFile, PENDING, 1, false, signal, 'PENDING');
        const shmFile = await this.file(db, 'shm');
        await this.take(db, held, shmFile, SHM_WRITE, 1, false, signal, 'WAL WRITE');
        await this.take(db, held, shmFile, SHM_WRITE + 1, SHM_LOCKS - 1, false, signal, 'WAL CKPT/RECOVER/READ');
      }
    } catch (err) {
      this.release(held);
      throw err;
    }
    return async () => this.release(held);
  }

  async shared(db: string, signal: AbortSignal): Promise<ReleaseLocks> {
    const held: Held[] = [];
    try {
      const dbFile = await this.file(db, 'database');
      // As a SQLite reader: PENDING shared while SHARED is taken.
      await this.take(db, held, dbFile, PENDING, 1, true, signal, 'PENDING');
      await this.take(db, held, dbFile, SHARED_FIRST, SHARED_SIZE, true, signal, 'SHARED');
      this.release(held.splice(0, 1));
    } catch (err) {
      this.release(held);
      throw err;
    }
    return async () => this.release(held);
  }

  async readShm(db: string, length: number): Promise<Buffer> {
    const fh = await this.handle(db, 'shm', false);
    if (fh === null) return Buffer.alloc(0);
    const buf = Buffer.alloc(length);
    try {
      const { bytesRead } = await fh.read(buf, 0, length, 0);
      return buf.subarray(0, bytesRead);
    } catch (err) {
      // The last connection removed `-shm` since this descriptor was opened.
      if (isErrno(err, 'ENOENT')) return Buffer.alloc(0);
      throw err;
    }
  }

  async walConnections(db: string): Promise<boolean> {
    const fh = await this.handle(db, 'shm', false);
    if (fh === null) return false;
    // Every connection using the wal-index holds DMS shared while it is open.
    if (!fsx.tryLock(fh.fd, SHM_DMS, 1, { shared: false })) return true;
    fsx.unlock(fh.fd, SHM_DMS, 1);
    return false;
  }

  async writeShm(db: string, offset: number, data: Buffer): Promise<void> {
    const fh = await this.handle(db, 'shm', false);
    if (fh === null) return; // nobody has the wal-index: the first reader builds it
    try {
      await fh.write(data, 0, data.length, offset);
    } catch (err) {
      // Removed by the last connection since this descriptor was opened: same as none.
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  async forget(db: string): Promise<void> {
    for (const kind of ['database', 'shm'] as const) {
      const key = `${kind}\0${db}`;
      const fh = this.files.get(key);
      this.files.delete(key);
      // Closing sends the mount a RELEASE this process answers: never synchronously.
      await fh?.close().catch(() => {});
    }
  }

  /** Lets go of every descriptor (before unmounting). */
  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((fh) => fh.close().catch(() => {})));
  }

  private async file(db: string, kind: 'database' | 'shm'): Promise<FileHandle> {
    return (await this.handle(db, kind, true))!;
  }

  /** The daemon's own descriptor on `<db>` or `<db>-shm` in the mount (write locks need it opened read-write). */
  private async handle(db: string, kind: 'database' | 'shm', create: boolean): Promise<FileHandle | null> {
    const key = `${kind}\0${db}`;
    const have = this.files.get(key);
    if (have !== undefined) return have;
    const path = join(this.mountDir, kind === 'database' ? db : `${db}-shm`);
    let fh: FileHandle;
    try {
      fh = await open(path, create && kind === 'shm' ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR);
    } catch (err) {
      if (!create && isErrno(err, 'ENOENT')) return null;
      throw err;
    }
    const raced = this.files.get(key);
    if (raced !== undefined) {
      await fh.close();
      return raced;
    }
    this.files.set(key, fh);
    return fh;
  }

  private async take(
    db: string,
    held: Held[],
    fh: FileHandle,
    start: number,
    length: number,
    shared: boolean,
    signal: AbortSignal,
    what: string,
  ): Promise<void> {
    let wait = FIRST_POLL_MS;
    const started = Date.now();
    let warned = false;
    for (;;) {
      if (fsx.tryLock(fh.fd, start, length, { shared })) {
        held.push({ fh, start, length });
        return;
      }
      if (signal.aborted) {
        throw new LockError(
          'ERR_LOCK_TIMEOUT',
          `${db}: SQLite clients held the ${what} lock for ${Date.now() - started} ms; gave up waiting`,
          { cause: signal.reason },
        );
      }
      if (!warned && Date.now() - started > 5_000) {
        warned = true;
        this.log.warn(
          { db, lock: what },
          'waiting for SQLite clients to release a lock (a long transaction, or a connection in locking_mode=EXCLUSIVE)',
        );
      }
      await sleep(wait, signal).catch(() => {});
      wait = Math.min(MAX_POLL_MS, wait * 2);
    }
  }

  private release(held: Held[]): void {
    const open = new Set(this.files.values());
    for (const h of held.reverse()) {
      // A descriptor closed by forget() took its locks with it, and its
      // number may already belong to another file: never touch it.
      if (!open.has(h.fh)) continue;
      fsx.unlock(h.fh.fd, h.start, h.length);
    }
    held.length = 0;
  }
}
