/**
 * The store: every replicated database under one data directory, its
 * files, page checksums, position, locks and LTX history, and the rules of
 * replication (commit capture on the primary, apply on replicas). This
 * file is the store's public surface: other modules import only from here.
 */
export { Store } from './store.js';
export type { StoreOptions, StoreEvents } from './store.js';
export { DB } from './db.js';
export type { ByteRange, CacheInvalidator, DBChange, DBChangeKind } from './db.js';
export type { DBStats } from './db-stats.js';
export { StoreError, isStoreError } from './errors.js';
export type { StoreErrorCode } from './errors.js';
export { AUXILIARY_SUFFIXES, MAX_DB_NAME_LENGTH, invalidDatabaseName } from './names.js';
export { LeaseMonitor } from './lease-monitor.js';
export type { LeaseMonitorOptions, MonitorEvents, ReplicaEnd, ReplicaHooks } from './lease-monitor.js';
export { receiveLtx } from './replicate.js';
export type { ReceiveOptions, ReceivedLtx } from './replicate.js';
export { writeSnapshot } from './snapshot.js';
export type { Snapshot, SnapshotOptions } from './snapshot.js';
export { ImportError, importDatabase, importSizeLimit, inspectImportHeader } from './import.js';
export type { ImportErrorCode, ImportHeader } from './import.js';
export { LockError } from './rwmutex.js';
export { SQLITE_HEADER_SIZE } from './sqlite-header.js';
export { LtxDirUsage } from './ltx-usage.js';
export type { LtxUsage } from './ltx-usage.js';
export { isHotJournalFile } from './journal.js';
export { noClientLocks } from './client-locks.js';
export type { ClientLocks, JournalKind, ReleaseLocks } from './client-locks.js';
export { realFS } from './sys.js';
export type { OpenMode, StoreFile, StoreFS } from './sys.js';
