import { describe, expect, it } from 'vitest';
import {
  JOURNAL_MAGIC,
  JournalReader,
  bufferSource,
  isHotJournalHeader,
  journalRecordChecksum,
  type JournalRecord,
} from '../../src/store/journal.js';
import { lockPageNumber } from '../../src/store/sqlite-header.js';

interface SynthRecord {
  pgno: number;
  fill: number;
  /** Corrupt the stored checksum. */
  badChecksum?: boolean;
}

interface SynthSegment {
  nonce: number;
  /** Stored nRec; default the number of records. */
  nRec?: number;
  records: SynthRecord[];
  /** Write the header without magic (unsynced / PERSIST-zeroed). */
  noMagic?: boolean;
}

/** Builds a journal by the format rules, independently of the reader. */
function makeJournal(opts: { pageSize: number; sectorSize: number; dbSize: number; segments: SynthSegment[]; tail?: Buffer }): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    size += b.length;
  };
  for (const seg of opts.segments) {
    const pad = (opts.sectorSize - (size % opts.sectorSize)) % opts.sectorSize;
    push(Buffer.alloc(pad));
    const h = Buffer.alloc(opts.sectorSize);
    if (!seg.noMagic) JOURNAL_MAGIC.copy(h, 0);
    h.writeUInt32BE(seg.nRec ?? seg.records.length, 8);
    h.writeUInt32BE(seg.nonce >>> 0, 12);
    h.writeUInt32BE(opts.dbSize, 16);
    h.writeUInt32BE(opts.sectorSize, 20);
    h.writeUInt32BE(opts.pageSize, 24);
    push(h);
    for (const r of seg.records) {
      const rec = Buffer.alloc(opts.pageSize + 8);
      rec.writeUInt32BE(r.pgno, 0);
      rec.fill(r.fill, 4, 4 + opts.pageSize);
      const page = rec.subarray(4, 4 + opts.pageSize);
      rec.writeUInt32BE((journalRecordChecksum(seg.nonce, page) + (r.badChecksum ? 1 : 0)) >>> 0, 4 + opts.pageSize);
      push(rec);
    }
  }
  if (opts.tail) push(opts.tail);
  return Buffer.concat(parts);
}

async function readAll(
  buf: Buffer,
  opts?: { defaultPageSize?: number; readBufferSize?: number },
): Promise<{ reader: JournalReader; recs: JournalRecord[] }> {
  const reader = await JournalReader.open(bufferSource(buf), opts);
  const recs: JournalRecord[] = [];
  for await (const r of reader.records()) recs.push(r);
  return { reader, recs };
}

const summary = (recs: JournalRecord[]): [number, number][] => recs.map((r) => [r.pgno, r.data[0] ?? -1]);

describe('journalRecordChecksum', () => {
  it('sums every 200th byte from pageSize-200 down, above 0, onto the nonce', () => {
    const page = Buffer.alloc(4096);
    for (let i = 4096 - 200; i > 0; i -= 200) page[i] = 1;
    expect(journalRecordChecksum(0, page)).toBe(20);
    page[0] = 200; // index 0 is never included
    page[4095] = 200; // nor the last byte
    expect(journalRecordChecksum(1000, page)).toBe(1020);
    expect(journalRecordChecksum(0xffffffff, Buffer.alloc(512, 0))).toBe(0xffffffff);
    const p512 = Buffer.alloc(512);
    p512[312] = 5;
    p512[112] = 7;
    expect(journalRecordChecksum(0xfffffffe, p512)).toBe(10); // wraps at 2^32
  });
});

describe('JournalReader on constructed journals', () => {
  it('is not hot without the magic', async () => {
    const j = makeJournal({
      pageSize: 512,
      sectorSize: 512,
      dbSize: 4,
      segments: [{ nonce: 1, noMagic: true, records: [{ pgno: 1, fill: 9 }] }],
    });
    expect(isHotJournalHeader(j)).toBe(false);
    const { reader, recs } = await readAll(j);
    expect(reader.hot).toBe(false);
    expect(reader.originalPageCount).toBeNull();
    expect(recs).toEqual([]);
    expect((await readAll(Buffer.alloc(0))).reader.hot).toBe(false);
    expect((await readAll(JOURNAL_MAGIC.subarray(0, 7))).reader.hot).toBe(false);
    // Magic but no room for the rest of the header: hot, yet nothing to play.
    const stub = await readAll(Buffer.concat([JOURNAL_MAGIC, Buffer.alloc(4)]));
    expect(stub.reader.hot).toBe(true);
    expect(stub.reader.stats.endReason).toBe('bad-header');
  });

  it('reads multiple segments with their own nonces, first occurrence winning', async () => {
    const j = makeJournal({
      pageSize: 1024,
      sectorSize: 512,
      dbSize: 10,
      segments: [
        {
          nonce: 111,
          records: [
            { pgno: 1, fill: 1 },
            { pgno: 3, fill: 3 },
          ],
        },
        {
          nonce: 0xdeadbeef,
          records: [
            { pgno: 7, fill: 7 },
            { pgno: 3, fill: 99 },
          ],
        },
        { nonce: 5, records: [{ pgno: 10, fill: 10 }] },
      ],
    });
    const { reader, recs } = await readAll(j, { readBufferSize: 700 });
    expect(summary(recs)).toEqual([
      [1, 1],
      [3, 3],
      [7, 7],
      [10, 10],
    ]);
    expect(reader.stats).toMatchObject({ segments: 3, records: 4, duplicates: 1, endReason: 'eof' });
    expect(reader.originalPageCount).toBe(10);
    expect(reader.pageSize).toBe(1024);
    expect(recs.every((r) => r.data.length === 1024)).toBe(true);
  });

  it('stops at a segment header without magic', async () => {
    const j = makeJournal({
      pageSize: 512,
      sectorSize: 512,
      dbSize: 5,
      segments: [
        { nonce: 1, records: [{ pgno: 2, fill: 2 }] },
        { nonce: 2, noMagic: true, records: [{ pgno: 4, fill: 4 }] },
      ],
    });
    const { reader, recs } = await readAll(j);
    expect(summary(recs)).toEqual([[2, 2]]);
    expect(reader.stats.endReason).toBe('no-segment-magic');
  });

  it('ends playback at a bad checksum, page 0 or the lock page', async () => {
    const base = { pageSize: 512, sectorSize: 512, dbSize: 3_000_000 };
    for (const [bad, reason] of [
      [{ pgno: 2, fill: 2, badChecksum: true }, 'bad-checksum'],
      [{ pgno: 0, fill: 0 }, 'bad-pgno'],
      [{ pgno: lockPageNumber(512), fill: 5 }, 'bad-pgno'],
    ] as const) {
      const j = makeJournal({
        ...base,
        segments: [
          { nonce: 9, records: [{ pgno: 1, fill: 1 }, bad, { pgno: 3, fill: 3 }] },
          { nonce: 9, records: [{ pgno: 4, fill: 4 }] },
        ],
      });
      const { reader, recs } = await readAll(j);
      expect(summary(recs), reason).toEqual([[1, 1]]);
      expect(reader.stats.endReason).toBe(reason);
    }
  });

  it('skips pages past the original size without checking their checksum', async () => {
    const j = makeJournal({
      pageSize: 512,
      sectorSize: 512,
      dbSize: 2,
      segments: [
        {
          nonce: 4,
          records: [
            { pgno: 1, fill: 1 },
            { pgno: 9, fill: 9, badChecksum: true },
            { pgno: 2, fill: 2 },
          ],
        },
      ],
    });
    const { reader, recs } = await readAll(j);
    expect(summary(recs)).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(reader.stats).toMatchObject({ beyondSize: 1, endReason: 'eof' });
  });

  it('derives the record count from the file size when nRec is 0xFFFFFFFF', async () => {
    const j = makeJournal({
      pageSize: 512,
      sectorSize: 512,
      dbSize: 8,
      segments: [
        {
          nonce: 3,
          nRec: 0xffffffff,
          records: [
            { pgno: 5, fill: 5 },
            { pgno: 6, fill: 6 },
          ],
        },
      ],
      tail: Buffer.alloc(300, 0xaa), // a partial record: ignored
    });
    const { reader, recs } = await readAll(j);
    expect(summary(recs)).toEqual([
      [5, 5],
      [6, 6],
    ]);
    expect(reader.stats.endReason).toBe('eof');
  });

  it('treats nRec 0 in a hot journal as an empty segment, as SQLite does', async () => {
    const j = makeJournal({
      pageSize: 512,
      sectorSize: 512,
      dbSize: 8,
      segments: [
        { nonce: 3, nRec: 0, records: [] },
        { nonce: 4, records: [{ pgno: 2, fill: 2 }] },
      ],
    });
    const { recs } = await readAll(j);
    expect(summary(recs)).toEqual([[2, 2]]);
  });

  it('stops at a record cut short by the end of the file', async () => {
    const full = makeJournal({
      pageSize: 512,
      sectorSize: 512,
      dbSize: 8,
      segments: [
        {
          nonce: 3,
          records: [
            { pgno: 1, fill: 1 },
            { pgno: 2, fill: 2 },
          ],
        },
      ],
    });
    const { reader, recs } = await readAll(full.subarray(0, full.length - 1));
    expect(summary(recs)).toEqual([[1, 1]]);
    expect(reader.stats.endReason).toBe('short-record');
  });

  it('refuses implausible first headers without touching anything', async () => {
    const good = makeJournal({ pageSize: 1024, sectorSize: 512, dbSize: 8, segments: [{ nonce: 1, records: [{ pgno: 1, fill: 1 }] }] });
    for (const [off, value] of [
      [24, 1000], // page size not a power of two
      [24, 256], // page size too small
      [24, 131072], // page size too large
      [20, 16], // sector size too small
      [20, 0x20000], // sector size too large
      [20, 768], // sector size not a power of two
    ] as const) {
      const j = Buffer.from(good);
      j.writeUInt32BE(value, off);
      const { reader, recs } = await readAll(j);
      expect(reader.hot).toBe(true);
      expect(reader.originalPageCount, `${off}=${value}`).toBeNull();
      expect(reader.stats.endReason).toBe('bad-header');
      expect(recs).toEqual([]);
    }
    // Header shorter than its sector.
    expect((await readAll(good.subarray(0, 400))).reader.stats.endReason).toBe('bad-header');
  });

  it('uses the default page size for pre-3.5.8 journals with page size 0', async () => {
    const j = makeJournal({ pageSize: 1024, sectorSize: 512, dbSize: 8, segments: [{ nonce: 1, records: [{ pgno: 3, fill: 3 }] }] });
    j.writeUInt32BE(0, 24);
    expect((await readAll(j)).reader.stats.endReason).toBe('bad-header');
    const { recs } = await readAll(j, { defaultPageSize: 1024 });
    expect(summary(recs)).toEqual([[3, 3]]);
  });

  it('can only be iterated once', async () => {
    const j = makeJournal({ pageSize: 512, sectorSize: 512, dbSize: 8, segments: [{ nonce: 1, records: [] }] });
    const reader = await JournalReader.open(bufferSource(j));
    for await (const _ of reader.records()) break;
    await expect(reader.records().next()).rejects.toThrow(/once/);
  });
});
