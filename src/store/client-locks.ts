/**
 * How the store keeps SQLite clients out of a database while it changes
 * the file behind their backs (a replica's apply, an import, rolling back
 * a writer cut off by a role change) or reads it as of one position (a
 * snapshot or export in rollback-journal mode).
 *
 * SQLite's fcntl locks stay in the kernel (the mount does not forward
 * them: a read transaction costs no round trip to the daemon), so the
 * store takes the very same locks through the mount, where they queue with
 * the applications' own. The fs layer provides that; without a mount there
 * are no SQLite clients and nothing to exclude (`noClientLocks`).
 */
export type JournalKind = 'rollback' | 'wal';

/** Gives the locks back; never throws. */
export type ReleaseLocks = () => Promise<void>;

export interface ClientLocks {
  /**
   * No SQLite connection is in a transaction, and none can start one,
   * until released. Rollback mode: RESERVED, PENDING and SHARED held
   * exclusively (a writer finishes first, then readers drain). WAL mode:
   * PENDING on the database and WRITE, CKPT, RECOVER, READ0-4 on the
   * wal-index exclusively (WAL connections keep SHARED on the database for
   * as long as they are open, so the wal-index locks are what exclude them).
   */
  exclusive(db: string, kind: JournalKind, signal: AbortSignal): Promise<ReleaseLocks>;
  /** No SQLite writer can commit until released; readers carry on (rollback mode: SHARED, as a reader takes it). */
  shared(db: string, signal: AbortSignal): Promise<ReleaseLocks>;
  /**
   * Writes into the wal-index (`<db>-shm`) the way readers see it: they
   * mmap it, so the bytes go through the mount's page cache. Called while
   * holding `exclusive(db, 'wal')`.
   */
  writeShm(db: string, offset: number, data: Buffer): Promise<void>;
  /** Reads the wal-index as readers see it (empty when there is none). */
  readShm(db: string, length: number): Promise<Buffer>;
  /** Whether any connection has the wal-index open (SQLite holds its DMS byte for that long). */
  walConnections(db: string): Promise<boolean>;
  /** The database was dropped, or the store closes: let go of its files. */
  forget(db: string): Promise<void>;
}

/** No mount, no SQLite clients: every lock is granted at once. */
export const noClientLocks: ClientLocks = {
  exclusive: async () => async () => {},
  shared: async () => async () => {},
  writeShm: async () => {},
  readShm: async () => Buffer.alloc(0),
  walConnections: async () => false,
  forget: async () => {},
};
