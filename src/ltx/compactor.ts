/**
 * Merges several contiguous LTX files into one (ltx compactor semantics):
 * inputs sorted by MinTXID, equal page sizes, contiguous TXIDs; the output
 * header takes PageSize, MinTXID and PreApply from the first input and
 * Commit, MaxTXID and Timestamp from the last (WAL fields and NodeID zero);
 * for a page in several inputs the latest wins; pages past the final commit
 * are dropped (the database shrank); every input is fully verified; the
 * output PostApply is the last input's.
 *
 * Unlike ltx v0.3.14, a header that fails to decode is an error (Go
 * returned nil there), and inputs are read with the page-order check on,
 * because a merge by page number is only correct over sorted inputs.
 */
import { LtxDecoder, type DecoderOptions } from './decoder.js';
import { LtxEncoder, type EncoderOptions, type LtxSink } from './encoder.js';
import { LtxError, hex64 } from './errors.js';
import { LtxFileSink } from './file-sink.js';
import type { LtxSource } from './reader.js';
import type { Header, Page, Trailer } from './types.js';

export interface CompactOptions extends EncoderOptions {
  /** Flags of the output header, e.g. HEADER_FLAG_COMPRESS_LZ4. Default 0. */
  flags?: number;
  /** Skip the contiguity check (e.g. rebuilding a snapshot with holes). */
  allowNonContiguousTXIDs?: boolean;
  /** Extra checks for inputs; page order is always on. */
  decoder?: DecoderOptions;
}

export interface CompactResult {
  header: Header;
  trailer: Trailer;
  pageCount: number;
}

function describe(src: LtxSource, i: number): string {
  return typeof src === 'string' ? `input ${i} (${src})` : `input ${i}`;
}

function inInput(err: unknown, what: string): unknown {
  if (err instanceof LtxError) {
    return new LtxError(err.code, `${what}: ${err.message}`, {
      ...(err.field === undefined ? {} : { field: err.field }),
      ...(err.value === undefined ? {} : { value: err.value }),
      cause: err,
    });
  }
  return err;
}

interface Input {
  dec: LtxDecoder;
  name: string;
  header: Header;
  page: Page | null;
}

export async function compactLtx(inputs: LtxSource[], sink: LtxSink, opts: CompactOptions = {}): Promise<CompactResult> {
  if (inputs.length === 0) throw new LtxError('ERR_LTX_STATE', 'compaction needs at least one input');
  const decs = inputs.map((src) => new LtxDecoder(src, { ...opts.decoder, checkPageOrder: true }));
  try {
    const list: Input[] = [];
    for (let i = 0; i < decs.length; i++) {
      const name = describe(inputs[i]!, i);
      try {
        list.push({ dec: decs[i]!, name, header: await decs[i]!.decodeHeader(), page: null });
      } catch (err) {
        throw inInput(err, name);
      }
    }
    list.sort((a, b) => (a.header.minTXID < b.header.minTXID ? -1 : a.header.minTXID > b.header.minTXID ? 1 : 0));

    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      if (prev.header.pageSize !== cur.header.pageSize) {
        throw new LtxError(
          'ERR_LTX_PAGE_SIZE_MISMATCH',
          `input files have mismatched page sizes: ${prev.header.pageSize} (${prev.name}) != ${cur.header.pageSize} (${cur.name})`,
          { field: 'pageSize', value: cur.header.pageSize },
        );
      }
      if (!opts.allowNonContiguousTXIDs && prev.header.maxTXID + 1n !== cur.header.minTXID) {
        throw new LtxError(
          'ERR_LTX_NOT_CONTIGUOUS',
          `non-contiguous transaction ids in input files: (${hex64(prev.header.minTXID)},${hex64(prev.header.maxTXID)}) -> (${hex64(cur.header.minTXID)},${hex64(cur.header.maxTXID)})`,
          { field: 'minTXID', value: hex64(cur.header.minTXID) },
        );
      }
    }

    const first = list[0]!.header;
    const last = list[list.length - 1]!.header;
    const header: Header = {
      flags: opts.flags ?? 0,
      pageSize: first.pageSize,
      commit: last.commit,
      minTXID: first.minTXID,
      maxTXID: last.maxTXID,
      timestamp: last.timestamp,
      preApplyChecksum: first.preApplyChecksum,
      walOffset: 0n,
      walSize: 0n,
      walSalt1: 0,
      walSalt2: 0,
      nodeID: 0n,
    };
    const enc = new LtxEncoder(sink, opts);
    await enc.encodeHeader(header);

    const advance = async (inp: Input): Promise<void> => {
      try {
        inp.page = await inp.dec.nextPage();
      } catch (err) {
        throw inInput(err, inp.name);
      }
    };
    for (const inp of list) await advance(inp);

    for (;;) {
      let pgno = 0;
      for (const inp of list) {
        if (inp.page !== null && (pgno === 0 || inp.page.pgno < pgno)) pgno = inp.page.pgno;
      }
      if (pgno === 0) break;
      // The latest input holding this page wins; the others' copies are stale.
      let winner: Input | null = null;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i]!.page?.pgno === pgno) {
          winner = list[i]!;
          break;
        }
      }
      if (pgno <= header.commit) await enc.encodePage(pgno, winner!.page!.data);
      for (const inp of list) if (inp.page?.pgno === pgno) await advance(inp);
    }

    let lastTrailer: Trailer | null = null;
    for (const inp of list) {
      try {
        lastTrailer = await inp.dec.close();
      } catch (err) {
        throw inInput(err, inp.name);
      }
    }
    const trailer = await enc.close(lastTrailer!.postApplyChecksum);
    return { header, trailer, pageCount: enc.pageCount };
  } finally {
    await Promise.all(decs.map((d) => d.destroy().catch(() => {})));
  }
}

/** Compacts files into `outputPath` durably (tmp file, fsync, rename, fsync dir). */
export async function compactLtxFiles(inputPaths: string[], outputPath: string, opts: CompactOptions = {}): Promise<CompactResult> {
  const sink = await LtxFileSink.create(outputPath);
  try {
    const r = await compactLtx(inputPaths, sink, opts);
    await sink.commit();
    return r;
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
