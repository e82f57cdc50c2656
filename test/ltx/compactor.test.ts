import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CHECKSUM_FLAG } from '../../src/ltx/checksum.js';
import { compactLtx, compactLtxFiles } from '../../src/ltx/compactor.js';
import { LtxDecoder, verifyLtxFile } from '../../src/ltx/decoder.js';
import { encodeLtxToBuffer, type LtxSink } from '../../src/ltx/encoder.js';
import { LtxError } from '../../src/ltx/errors.js';
import { newHeader } from '../../src/ltx/types.js';
import { writeFile } from 'node:fs/promises';
import { DbModel, bytesEqual, craftLtx, mixedPage, rng, withTmpDir } from './helpers.js';

class Collector implements LtxSink {
  chunks: Uint8Array[] = [];
  write(c: Uint8Array): void {
    this.chunks.push(c);
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

async function compact(inputs: Uint8Array[], opts: Parameters<typeof compactLtx>[2] = {}) {
  const sink = new Collector();
  const r = await compactLtx(inputs, sink, opts);
  return { ...r, bytes: sink.bytes() };
}

async function pagesOf(bytes: Uint8Array): Promise<Map<number, Uint8Array>> {
  const dec = new LtxDecoder(bytes, { strict: true });
  const m = new Map<number, Uint8Array>();
  for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) m.set(p.pgno, p.data.slice());
  await dec.close();
  return m;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    return (err as LtxError).code;
  }
  return 'resolved';
}

function chain(seed: number, pageSize = 1024) {
  const rand = rng(seed);
  const db = new DbModel(pageSize);
  const pg = () => mixedPage(rand, pageSize);
  const files = [
    db.tx(new Map([1, 2, 3, 4, 5].map((p) => [p, pg()])), 5),
    db.tx(
      new Map([
        [2, pg()],
        [6, pg()],
      ]),
      6,
      { nodeID: 99n },
    ),
    db.tx(
      new Map([
        [2, pg()],
        [3, pg()],
      ]),
      6,
      { timestamp: 123456n },
    ),
  ];
  return { db, files, rand, pg };
}

describe('compactor', () => {
  it('merges a snapshot and incrementals (in any input order) into the final snapshot', async () => {
    const { db, files } = chain(1);
    const r = await compact([files[2]!, files[0]!, files[1]!]);
    expect(r.header).toEqual(newHeader({ pageSize: 1024, commit: 6, minTXID: 1n, maxTXID: 3n, timestamp: 123456n }));
    expect(r.trailer.postApplyChecksum).toBe(db.checksum());
    expect(r.pageCount).toBe(6);
    const pages = await pagesOf(r.bytes);
    expect([...pages.keys()]).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [pgno, data] of pages) expect(bytesEqual(data, db.pages.get(pgno)!)).toBe('equal');
    // The decoder recomputed the snapshot's database checksum; verify it once more, strictly.
    expect((await verifyLtxFile(r.bytes, { strict: true })).trailer).toEqual(r.trailer);
  });

  it('merges incrementals: first PreApply, last commit/timestamp, no WAL fields or node id, latest page wins', async () => {
    const { db, files } = chain(2);
    const pre = (await new LtxDecoder(files[1]!).decodeHeader()).preApplyChecksum;
    const r = await compact([files[1]!, files[2]!], { flags: 1 });
    expect(r.header).toEqual(
      newHeader({ flags: 1, pageSize: 1024, commit: 6, minTXID: 2n, maxTXID: 3n, timestamp: 123456n, preApplyChecksum: pre }),
    );
    expect(Array.from(r.bytes.subarray(100, 106))).toEqual([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40]);
    const pages = await pagesOf(r.bytes);
    expect([...pages.keys()]).toEqual([2, 3, 6]);
    expect(bytesEqual(pages.get(2)!, db.pages.get(2)!)).toBe('equal');
    expect(r.trailer.postApplyChecksum).toBe(db.checksum());
  });

  it('drops pages beyond the final commit when the database shrank', async () => {
    const { db, files, pg } = chain(3);
    files.push(db.tx(new Map([[1, pg()]]), 3));
    const r = await compact(files);
    expect(r.header.commit).toBe(3);
    expect([...(await pagesOf(r.bytes)).keys()]).toEqual([1, 2, 3]);
    expect(r.trailer.postApplyChecksum).toBe(db.checksum());
    const inc = await compact(files.slice(1));
    expect([...(await pagesOf(inc.bytes)).keys()]).toEqual([1, 2, 3]);
  });

  it('refuses mismatched page sizes and non-contiguous TXIDs (unless allowed)', async () => {
    const a = chain(4).files;
    const b = chain(5, 2048).files;
    expect(await code(compact([a[0]!, b[1]!]))).toBe('ERR_LTX_PAGE_SIZE_MISMATCH');
    expect(await code(compact([a[0]!, a[2]!]))).toBe('ERR_LTX_NOT_CONTIGUOUS');
    const r = await compact([a[0]!, a[2]!], { allowNonContiguousTXIDs: true });
    expect(r.header.maxTXID).toBe(3n);
    expect(await code(compact([]))).toBe('ERR_LTX_STATE');
  });

  it('verifies every input and reports header errors instead of succeeding quietly', async () => {
    const { files } = chain(6);
    const corrupt = files[1]!.slice();
    corrupt[corrupt.length - 1]! ^= 1;
    expect(await code(compact([files[0]!, corrupt, files[2]!]))).toBe('ERR_LTX_CHECKSUM_MISMATCH');
    const badMagic = files[2]!.slice();
    badMagic[0] = 0;
    expect(await code(compact([files[0]!, files[1]!, badMagic]))).toBe('ERR_LTX_BAD_MAGIC');
    const truncated = files[1]!.subarray(0, 50);
    const err = await compact([files[0]!, truncated]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_LTX_TRUNCATED', message: expect.stringMatching(/^input 1: /) });
  });

  it('requires sorted pages in inputs (a merge by page number needs them)', async () => {
    const h = newHeader({ pageSize: 512, commit: 4, minTXID: 2n, maxTXID: 2n, preApplyChecksum: CHECKSUM_FLAG | 1n });
    const snap = encodeLtxToBuffer(
      newHeader({ pageSize: 512, commit: 1, minTXID: 1n, maxTXID: 1n }),
      [{ pgno: 1, data: new Uint8Array(512) }],
      0xefb1f44fecd99000n,
    );
    const unordered = craftLtx(
      { ...h, preApplyChecksum: 0xefb1f44fecd99000n },
      [
        { pgno: 3, data: new Uint8Array(512) },
        { pgno: 2, data: new Uint8Array(512) },
      ],
      CHECKSUM_FLAG | 5n,
    );
    expect(await code(compact([snap, unordered]))).toBe('ERR_LTX_PAGE_INVALID');
  });

  it('writes the output file durably', async () => {
    await withTmpDir(async (dir) => {
      const { db, files } = chain(7);
      const paths = files.map((_, i) => join(dir, `in${i}.ltx`));
      await Promise.all(files.map((f, i) => writeFile(paths[i]!, f)));
      const out = join(dir, '0000000000000001-0000000000000003.ltx');
      const r = await compactLtxFiles(paths, out, { flags: 1 });
      expect(r.trailer.postApplyChecksum).toBe(db.checksum());
      expect((await verifyLtxFile(out, { strict: true })).pageCount).toBe(6);
      expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      const failed = join(dir, 'failed.ltx');
      expect(await code(compactLtxFiles([paths[0]!, paths[2]!], failed))).toBe('ERR_LTX_NOT_CONTIGUOUS');
      expect((await readdir(dir)).filter((n) => n.startsWith('failed'))).toEqual([]);
    });
  });
});
