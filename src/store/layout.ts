import { join } from 'node:path';
import { ltxFilename } from '../ltx/index.js';

/**
 * Where a store keeps things under `data.dir` (the LiteFS v0.5 layout, so an
 * operator's tooling and habits carry over):
 *
 *   <data>/dbs/<name>/database        the SQLite file
 *   <data>/dbs/<name>/journal         the rollback journal behind <name>-journal
 *   <data>/dbs/<name>/wal, shm        the WAL and wal-index behind <name>-wal and <name>-shm
 *   <data>/dbs/<name>/ltx/<min>-<max>.ltx
 *   <data>/dbs/<name>/undo            litefs-ts only: pages SQLite does not journal (undo.ts)
 *   <data>/quarantine/...             what litefs-ts moved aside instead of deleting
 */
export class StoreLayout {
  constructor(readonly dataDir: string) {}

  get dbsDir(): string {
    return join(this.dataDir, 'dbs');
  }

  get quarantineDir(): string {
    return join(this.dataDir, 'quarantine');
  }

  dbDir(name: string): string {
    return join(this.dbsDir, name);
  }

  databasePath(name: string): string {
    return join(this.dbDir(name), 'database');
  }

  journalPath(name: string): string {
    return join(this.dbDir(name), 'journal');
  }

  /** The WAL behind `<name>-wal`. */
  walPath(name: string): string {
    return join(this.dbDir(name), 'wal');
  }

  /** The wal-index behind `<name>-shm`. */
  shmPath(name: string): string {
    return join(this.dbDir(name), 'shm');
  }

  /** Committed bytes of pages SQLite overwrites without journaling (undo.ts). */
  undoPath(name: string): string {
    return join(this.dbDir(name), 'undo');
  }

  ltxDir(name: string): string {
    return join(this.dbDir(name), 'ltx');
  }

  ltxPath(name: string, minTXID: bigint, maxTXID: bigint): string {
    return join(this.ltxDir(name), ltxFilename(minTXID, maxTXID));
  }
}
