import Database from 'better-sqlite3';
import type { DB, DBChange } from '../../src/store/db.js';
import type { Store } from '../../src/store/store.js';

/**
 * Plays a SQLite client against a Store without FUSE: SQL runs on an
 * in-memory SQLite database, and each transaction's new file image reaches
 * the store the way SQLite's DELETE journal mode writes it through the
 * mount (create journal, synced header with the magic, changed pages,
 * delete journal = commit point). Counts the writes it made, which is what
 * the write-count metrics must report.
 */
export class TxWriter {
  private readonly mem = new Database(':memory:');
  private image = Buffer.alloc(0);
  databaseWrites = 0;
  journalWrites = 0;

  constructor(
    private readonly store: Store,
    readonly name: string,
  ) {}

  get db(): DB {
    const db = this.store.db(this.name);
    if (db === undefined) throw new Error(`${this.name} does not exist yet`);
    return db;
  }

  /** Runs `sql` as one transaction and commits it through the store; resolves with the change it caused. */
  async commit(sql: string): Promise<DBChange> {
    this.mem.exec(sql);
    const next = this.mem.serialize();
    const pageSize = next.readUInt16BE(16);
    const db = this.store.db(this.name) ?? (await this.store.createDB(this.name));
    let change: DBChange | null = null;
    const onChange = (c: DBChange): void => {
      if (c.db === this.name) change = c;
    };
    this.store.on('change', onChange);
    try {
      await db.createJournal();
      const header = Buffer.alloc(512);
      Buffer.from('d9d505f920a163d7', 'hex').copy(header, 0);
      header.writeUInt32BE(this.image.length / pageSize, 16);
      header.writeUInt32BE(512, 20);
      header.writeUInt32BE(pageSize, 24);
      await db.writeJournal(0, header);
      this.journalWrites++;
      for (let off = 0; off < next.length; off += pageSize) {
        const page = next.subarray(off, off + pageSize);
        if (off + pageSize <= this.image.length && page.equals(this.image.subarray(off, off + pageSize))) continue;
        await db.writeDatabase(off, page);
        this.databaseWrites++;
      }
      if (next.length < this.image.length) await db.truncateDatabase(next.length);
      await db.removeJournal();
    } finally {
      this.store.off('change', onChange);
    }
    this.image = Buffer.from(next);
    if (change === null) throw new Error(`${this.name}: the transaction produced no change event`);
    return change;
  }

  /** Deletes the database through the store (unlink on the primary). */
  async drop(): Promise<DBChange> {
    let change: DBChange | null = null;
    const onChange = (c: DBChange): void => {
      if (c.db === this.name) change = c;
    };
    this.store.on('change', onChange);
    try {
      await this.db.drop();
    } finally {
      this.store.off('change', onChange);
    }
    if (change === null) throw new Error(`${this.name}: the drop produced no change event`);
    return change;
  }

  close(): void {
    this.mem.close();
  }
}
