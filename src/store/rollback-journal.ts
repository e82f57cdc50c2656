import { StoreError } from './errors.js';
import { isHotJournalHeader } from './journal.js';
import type { StoreFile, StoreFS } from './sys.js';

/**
 * The `-journal` file of one database: what SQLite writes before it changes
 * the database in a rollback-journal mode, and whose finalization (delete,
 * truncate to 0, or zeroed header) is the commit point.
 *
 * In DELETE mode the real file is not removed when SQLite deletes
 * `<db>-journal`: it is emptied and kept (invisible in the mount) for the
 * next transaction, which spares a create, a close and an unlink per
 * commit. On disk an empty journal is inert, like a missing one.
 */
export class RollbackJournal {
  private file: StoreFile | null = null;
  private spare: StoreFile | null = null;
  /** Whether the file begins with the journal magic; null: not known, read it. */
  private hotState: boolean | null = null;

  constructor(
    private readonly sys: StoreFS,
    private readonly path: string,
    private readonly name: string,
  ) {}

  get exists(): boolean {
    return this.file !== null;
  }

  get handle(): StoreFile | null {
    return this.file;
  }

  /** Opens the file if it exists (startup). */
  async open(): Promise<void> {
    this.file ??= await this.sys.open(this.path, 'rw');
    this.hotState = null;
  }

  /** `<db>-journal` created by a client. */
  async create(): Promise<void> {
    if (this.file !== null) return;
    const spare = this.spare;
    this.spare = null;
    this.file = spare ?? (await this.sys.open(this.path, 'create'));
    this.hotState = null;
  }

  require(): StoreFile {
    if (this.file === null) throw new StoreError('ERR_STORE_DB_NOT_FOUND', `${this.name}-journal: no such file`);
    return this.file;
  }

  /** The first bytes changed: whether the journal is hot must be read again. */
  touched(): void {
    this.hotState = null;
  }

  /**
   * Whether SQLite may be changing the database file now: it does so only
   * after it has synced a journal that starts with the magic (with
   * synchronous=OFF it writes the magic at once), and until it finalizes
   * that journal.
   */
  async isHot(): Promise<boolean> {
    if (this.file === null) return false;
    if (this.hotState === null) this.hotState = isHotJournalHeader(await this.file.read(8, 0));
    return this.hotState;
  }

  /** SQLite deleted `<db>-journal`: empty the file and keep it for the next transaction. */
  async retire(): Promise<void> {
    const file = this.file;
    this.file = null;
    this.hotState = null;
    if (file === null) return;
    try {
      await file.truncate(0);
    } catch (err) {
      await file.close().catch(() => {});
      await this.sys.unlink(this.path).catch(() => false);
      throw err;
    }
    this.spare = file;
  }

  /** Removes the file for good (rollback by the store, deletion of the database, close). */
  async remove(): Promise<void> {
    await this.close();
    await this.sys.unlink(this.path);
  }

  async close(): Promise<void> {
    const file = this.file;
    const spare = this.spare;
    this.file = null;
    this.spare = null;
    this.hotState = null;
    await file?.close();
    await spare?.close();
  }
}
