import { open, type FileHandle } from 'node:fs/promises';
import type { StoreFile, StoreFS } from './sys.js';
import { dirname } from 'node:path';
import { isErrno } from '../internal/index.js';
import { isValidPageSize, lockPageNumber } from './sqlite-header.js';

/**
 * SQLite rollback journal reading, for rolling back a hot journal left by a
 * crashed writer (LiteFS #134/#144). The format and the rules below follow
 * SQLite's pager: the playback of a *hot* journal, not of a live
 * transaction's own rollback.
 *
 * Layout: a header in its own sector (sector size from the first header),
 * then records of `u32 pgno ‖ page ‖ u32 checksum`. Further segments start
 * with a header at the next sector boundary after the previous records.
 */

/** The 8 bytes every synced journal header starts with. */
export const JOURNAL_MAGIC: Buffer = Buffer.from('d9d505f920a163d7', 'hex');

/** Bytes of meaningful header fields (magic, nRec, nonce, db size, sector size, page size). */
export const JOURNAL_HEADER_FIELDS_SIZE = 28;

/** nRec value meaning "records run to the end of the file" (synchronous=OFF). */
const NREC_TO_EOF = 0xffffffff;

const MAX_SECTOR_SIZE = 0x10000;

/**
 * LiteFS's hotness rule: the journal begins with the magic. In normal sync
 * modes SQLite writes the magic only when it syncs the journal, just before
 * it first writes the database, so a journal without it never needs
 * rolling back.
 */
export function isHotJournalHeader(first: Uint8Array): boolean {
  return first.length >= 8 && Buffer.from(first.buffer, first.byteOffset, 8).equals(JOURNAL_MAGIC);
}

/** Random-access byte source (an open file, or memory in tests). */
export interface JournalSource {
  size(): Promise<number>;
  /** Reads into `buf` from `position`; returns bytes read (short only at EOF). */
  readAt(buf: Buffer, position: number): Promise<number>;
}

export function fileHandleSource(fh: FileHandle): JournalSource {
  return {
    size: async () => (await fh.stat()).size,
    readAt: async (buf, position) => {
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
  };
}

export function bufferSource(data: Uint8Array): JournalSource {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return {
    size: async () => b.length,
    readAt: async (buf, position) => (position >= b.length ? 0 : b.copy(buf, 0, position, position + buf.length)),
  };
}

/** True when the file exists and begins with the journal magic. */
export async function isHotJournalFile(path: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  try {
    const first = Buffer.alloc(8);
    const n = await fileHandleSource(fh).readAt(first, 0);
    return n === 8 && isHotJournalHeader(first);
  } finally {
    await fh.close();
  }
}

export interface JournalHeader {
  /** File offset of this header. */
  offset: number;
  /** Records in this segment as stored; 0xFFFFFFFF means "to end of file". */
  nRec: number;
  /** Checksum initialiser for this segment's records. */
  nonce: number;
  /** Database size in pages when the transaction started (first header only is used). */
  dbSizePages: number;
  sectorSize: number;
  pageSize: number;
}

export interface JournalRecord {
  pgno: number;
  /** The page's content before the transaction; a fresh buffer owned by the caller. */
  data: Buffer;
}

/** Why playback stopped; every value except 'not-hot' and 'bad-header' still rolls back what was read. */
export type JournalEndReason =
  /** No journal magic: nothing to roll back (not hot). */
  | 'not-hot'
  /** First header has an invalid page or sector size, or is shorter than its sector: nothing to roll back. */
  | 'bad-header'
  /** No room for another header: the normal end. */
  | 'eof'
  /** The next segment's header has no magic (zeroed by PERSIST, or never synced). */
  | 'no-segment-magic'
  /** A record extends past the end of the file (crash while appending). */
  | 'short-record'
  /** A record for page 0 or the lock page: garbage, or a super-journal pointer. */
  | 'bad-pgno'
  /** A record's checksum does not match its segment nonce: stale PERSIST data or a torn write. */
  | 'bad-checksum';

export interface JournalStats {
  segments: number;
  /** Records yielded (first occurrence of each page). */
  records: number;
  /** Records skipped because their page was already yielded. */
  duplicates: number;
  /** Records skipped because their page is past the original size (not checksummed, as in SQLite). */
  beyondSize: number;
  endReason: JournalEndReason | null;
}

export interface JournalReaderOptions {
  /** Page size to assume when the header says 0 (journals from SQLite < 3.5.8). */
  defaultPageSize?: number;
  /** Bytes per read from the source; default 1 MiB (grown to one record if larger). */
  readBufferSize?: number;
}

/** SQLite's record checksum: nonce + every 200th byte counted down from pageSize-200, wrapping at 2^32. */
export function journalRecordChecksum(nonce: number, page: Uint8Array): number {
  let sum = nonce >>> 0;
  for (let i = page.length - 200; i > 0; i -= 200) sum = (sum + (page[i] ?? 0)) >>> 0;
  return sum;
}

function parseHeaderFields(b: Buffer, offset: number): JournalHeader {
  return {
    offset,
    nRec: b.readUInt32BE(8),
    nonce: b.readUInt32BE(12),
    dbSizePages: b.readUInt32BE(16),
    sectorSize: b.readUInt32BE(20),
    pageSize: b.readUInt32BE(24),
  };
}

function validSectorSize(n: number): boolean {
  return n >= 32 && n <= MAX_SECTOR_SIZE && (n & (n - 1)) === 0;
}

/**
 * Reads the pages a hot journal would restore, each once (first occurrence
 * wins: it holds the content from the start of the transaction). The caller
 * writes them back through its own page path, then truncates the database
 * to `originalPageCount` pages, then removes or invalidates the journal.
 */
export class JournalReader {
  readonly #src: JournalSource;
  readonly #size: number;
  readonly #bufSize: number;
  readonly #first: JournalHeader | null;
  readonly #hot: boolean;
  readonly #stats: JournalStats;
  #started = false;
  #win = Buffer.alloc(0);
  #winStart = 0;
  #winLen = 0;

  private constructor(
    src: JournalSource,
    size: number,
    hot: boolean,
    first: JournalHeader | null,
    bufSize: number,
    endReason: JournalEndReason | null,
  ) {
    this.#src = src;
    this.#size = size;
    this.#hot = hot;
    this.#first = first;
    this.#bufSize = bufSize;
    this.#stats = { segments: 0, records: 0, duplicates: 0, beyondSize: 0, endReason };
  }

  static async open(src: JournalSource, opts: JournalReaderOptions = {}): Promise<JournalReader> {
    const size = await src.size();
    const bufSize = opts.readBufferSize ?? 1 << 20;
    const head = Buffer.alloc(Math.min(size, JOURNAL_HEADER_FIELDS_SIZE));
    const n = head.length > 0 ? await src.readAt(head, 0) : 0;
    if (n < 8 || !isHotJournalHeader(head)) return new JournalReader(src, size, false, null, bufSize, 'not-hot');
    if (n < JOURNAL_HEADER_FIELDS_SIZE) return new JournalReader(src, size, true, null, bufSize, 'bad-header');
    const h = parseHeaderFields(head, 0);
    if (h.pageSize === 0 && opts.defaultPageSize !== undefined) h.pageSize = opts.defaultPageSize;
    // SQLite reads page and sector size from the first header only and stops
    // (without touching the database) when they are implausible: the writer
    // crashed before the header was synced.
    if (!isValidPageSize(h.pageSize) || !validSectorSize(h.sectorSize) || size < h.sectorSize) {
      return new JournalReader(src, size, true, null, bufSize, 'bad-header');
    }
    return new JournalReader(src, size, true, h, bufSize, null);
  }

  /** The journal starts with the magic (LiteFS's rule for "must roll back"). */
  get hot(): boolean {
    return this.#hot;
  }

  /** The first header, or null when the journal is not hot or its header is unusable. */
  get header(): JournalHeader | null {
    return this.#first;
  }

  get pageSize(): number | null {
    return this.#first?.pageSize ?? null;
  }

  /** Database size in pages before the transaction; null means "do not truncate". */
  get originalPageCount(): number | null {
    return this.#first?.dbSizePages ?? null;
  }

  /** Counters; endReason is set once records() has finished. */
  get stats(): Readonly<JournalStats> {
    return this.#stats;
  }

  /** A view of `len` bytes at `pos`, or null past end of file. Valid until the next call. */
  async #view(pos: number, len: number): Promise<Buffer | null> {
    if (pos + len > this.#size) return null;
    if (pos < this.#winStart || pos + len > this.#winStart + this.#winLen) {
      const want = Math.max(this.#bufSize, len);
      if (this.#win.length < want) this.#win = Buffer.allocUnsafe(want);
      const chunk = this.#win.subarray(0, Math.min(want, this.#size - pos));
      this.#winLen = await this.#src.readAt(chunk, pos);
      this.#winStart = pos;
      if (this.#winLen < len) return null; // file shrank under us
    }
    const o = pos - this.#winStart;
    return this.#win.subarray(o, o + len);
  }

  /** Single pass over the records to restore. */
  async *records(): AsyncGenerator<JournalRecord, void, undefined> {
    if (this.#started) throw new Error('JournalReader.records() can only be iterated once');
    this.#started = true;
    const first = this.#first;
    if (first === null) return;
    const { pageSize, sectorSize, dbSizePages } = first;
    const lockPg = lockPageNumber(pageSize);
    const recSize = pageSize + 8;
    const seen = new Set<number>();
    const st = this.#stats;
    let hdr: JournalHeader = first;

    for (;;) {
      st.segments++;
      let pos = hdr.offset + sectorSize;
      const nRec = hdr.nRec === NREC_TO_EOF ? Math.floor(Math.max(0, this.#size - pos) / recSize) : hdr.nRec;
      for (let u = 0; u < nRec; u++) {
        const rec = await this.#view(pos, recSize);
        if (rec === null) {
          st.endReason = 'short-record';
          return;
        }
        pos += recSize;
        const pgno = rec.readUInt32BE(0);
        if (pgno === 0 || pgno === lockPg) {
          st.endReason = 'bad-pgno';
          return;
        }
        // Pages past the original end are dropped by the truncation anyway;
        // SQLite skips them before checking the checksum, and so must we to
        // end playback at the same record.
        if (pgno > dbSizePages) {
          st.beyondSize++;
          continue;
        }
        const page = rec.subarray(4, 4 + pageSize);
        if (journalRecordChecksum(hdr.nonce, page) !== rec.readUInt32BE(4 + pageSize)) {
          st.endReason = 'bad-checksum';
          return;
        }
        if (seen.has(pgno)) {
          st.duplicates++;
          continue;
        }
        seen.add(pgno);
        st.records++;
        yield { pgno, data: Buffer.from(page) };
      }

      const next = Math.ceil(pos / sectorSize) * sectorSize;
      if (next + sectorSize > this.#size) {
        st.endReason = 'eof';
        return;
      }
      const fields = await this.#view(next, JOURNAL_HEADER_FIELDS_SIZE);
      if (fields === null || !isHotJournalHeader(fields)) {
        st.endReason = 'no-segment-magic';
        return;
      }
      hdr = { ...parseHeaderFields(fields, next), pageSize, sectorSize };
    }
  }
}

export interface RollbackResult {
  /** Whether the journal existed and began with the magic; only then can pages have been restored. */
  hot: boolean;
  /** Whether a journal file existed (it has been deleted). */
  removed: boolean;
  pageSize: number | null;
  /** Pages the database was truncated to; null when nothing was truncated. */
  originalPageCount: number | null;
  pagesRestored: number;
  endReason: JournalEndReason | null;
}

/**
 * Startup recovery for a plain database file, as LiteFS does it: if the
 * journal is hot, restore its pages and truncate the database to its original
 * size, then fsync; in every case delete the journal and fsync the directory.
 * A journal without the magic is deleted unplayed: no database page was
 * written under it (SQLite deletes such cold journals too). Only call this
 * while no SQLite client can be using the database. Databases whose writes
 * must go through checksum tracking should use JournalReader directly.
 */
export async function rollbackJournalFile(
  sys: StoreFS,
  dbPath: string,
  journalPath: string,
  opts: JournalReaderOptions = {},
): Promise<RollbackResult> {
  const journal = await sys.open(journalPath, 'r');
  if (journal === null) {
    return { hot: false, removed: false, pageSize: null, originalPageCount: null, pagesRestored: 0, endReason: null };
  }
  let reader: JournalReader;
  let restored = 0;
  try {
    reader = await JournalReader.open(storeFileSource(journal), opts);
    const pageSize = reader.pageSize;
    const dbSize = reader.originalPageCount;
    if (pageSize !== null && dbSize !== null) {
      const db = await sys.open(dbPath, 'rw');
      if (db !== null) {
        try {
          for await (const rec of reader.records()) {
            await db.write(rec.data.subarray(0, pageSize), (rec.pgno - 1) * pageSize);
            restored++;
          }
          await db.truncate(dbSize * pageSize);
          await db.sync();
        } finally {
          await db.close();
        }
      }
    }
  } finally {
    await journal.close();
  }
  await sys.unlink(journalPath);
  await sys.syncDir(dirname(journalPath));
  return {
    hot: reader.hot,
    removed: true,
    pageSize: reader.pageSize,
    originalPageCount: reader.originalPageCount,
    pagesRestored: restored,
    endReason: reader.stats.endReason,
  };
}

/** A journal in a StoreFile as the reader's byte source. */
function storeFileSource(file: StoreFile): JournalSource {
  return {
    size: () => file.size(),
    readAt: async (buf, position) => {
      const got = await file.read(buf.length, position, buf);
      return got.length;
    },
  };
}
