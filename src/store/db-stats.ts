/**
 * Per-database counters behind `/metrics`. Plain numbers bumped in place:
 * a FUSE write pays one increment, never a metrics-library call; the
 * Prometheus collectors read them when scraped. Counted since the process
 * started, as Prometheus counters are.
 */
export class DBStats {
  /** Writes SQLite clients made to the database file. */
  databaseWrites = 0;
  /** Writes SQLite clients made to the rollback journal. */
  journalWrites = 0;
  /** Writes to `-wal`: stays 0 while WAL mode is refused. */
  walWrites = 0;
  /** Writes to `-shm`: stays 0 while WAL mode is refused. */
  shmWrites = 0;
  /** Transactions this node recorded as LTX files: commits and deletes (as LiteFS counts them). */
  commits = 0;
  /** LTX files removed by retention. */
  ltxReaped = 0;
  /** Incremental LTX files sent to replicas over `/stream`. */
  ltxFramesSent = 0;
  /** Snapshots sent to replicas over `/stream`. */
  snapshotFramesSent = 0;
}
