import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DatabaseChecksum } from '../../src/ltx/checksum.js';
import { LtxDecoder, verifyLtxFile } from '../../src/ltx/decoder.js';
import { encodeLtxToBuffer } from '../../src/ltx/encoder.js';
import { LtxError } from '../../src/ltx/errors.js';
import { newHeader } from '../../src/ltx/types.js';
import { GO_LTX, mixedPage, rng } from './helpers.js';

/** The logical content of a valid file: header, every page, trailer. */
async function logical(bytes: Uint8Array): Promise<string> {
  const dec = new LtxDecoder(bytes);
  const h = await dec.decodeHeader();
  const parts: string[] = [JSON.stringify(h, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))];
  for (let p = await dec.nextPage(); p !== null; p = await dec.nextPage()) {
    parts.push(`${p.pgno}:${Buffer.from(p.data).toString('base64')}`);
  }
  const t = await dec.close();
  parts.push(`${t.postApplyChecksum}/${t.fileChecksum}`);
  return parts.join('|');
}

/** Verifies `bytes`; returns the LtxError code, 'ok', or a description of anything else. */
async function outcome(bytes: Uint8Array): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('hang'), 5000);
  });
  const run = verifyLtxFile(bytes).then(
    () => 'ok',
    (err: unknown) => (err instanceof LtxError ? err.code : `untyped: ${String(err)}`),
  );
  try {
    return await Promise.race([run, hang]);
  } finally {
    clearTimeout(timer);
  }
}

function sampleSnapshot(flags: number): Uint8Array {
  const rand = rng(77);
  const pages = Array.from({ length: 4 }, (_, i) => ({ pgno: i + 1, data: mixedPage(rand, 512) }));
  const d = new DatabaseChecksum(512);
  for (const p of pages) d.addPage(p.pgno, p.data);
  const h = newHeader({ flags, pageSize: 512, commit: 4, minTXID: 1n, maxTXID: 3n, timestamp: 1700000000000n, nodeID: 42n });
  return encodeLtxToBuffer(h, pages, d.value);
}

function sampleIncremental(flags: number): Uint8Array {
  const rand = rng(78);
  const h = newHeader({
    flags,
    pageSize: 1024,
    commit: 9,
    minTXID: 4n,
    maxTXID: 4n,
    preApplyChecksum: 0x8123456789abcdefn,
    walOffset: 32n,
    walSize: 2096n,
    walSalt1: 1,
    walSalt2: 2,
  });
  const pages = [2, 5, 9].map((pgno) => ({ pgno, data: mixedPage(rand, 1024) }));
  return encodeLtxToBuffer(h, pages, 0x8fedcba987654321n);
}

const samples: Array<[string, () => Promise<Uint8Array>]> = [
  ['uncompressed snapshot', async () => sampleSnapshot(0)],
  ['compressed snapshot', async () => sampleSnapshot(1)],
  ['uncompressed incremental with WAL fields', async () => sampleIncremental(0)],
  ['compressed incremental with WAL fields', async () => sampleIncremental(1)],
  ['the Go fixture', async () => new Uint8Array(await readFile(GO_LTX))],
];

describe('corruption is always caught with a typed error', () => {
  for (const [name, make] of samples) {
    it(`${name}: every single-byte change is rejected`, async () => {
      const good = await make();
      expect(await outcome(good)).toBe('ok');
      const content = await logical(good);
      const compressed = (good[7]! & 1) === 1;
      const seen = new Map<string, number>();
      for (let i = 0; i < good.length; i++) {
        for (const mask of [0x01, 0xff]) {
          const bad = good.slice();
          bad[i]! ^= mask;
          const code = await outcome(bad);
          seen.set(code, (seen.get(code) ?? 0) + 1);
          if (code === 'ok') {
            // The one way a change can pass: LZ4 block bytes that do not
            // affect the output. Seen here: the match-length nibble of a
            // block's last token (the last sequence is literals only, so the
            // nibble is never used); a different match offset copying the
            // same bytes is another. The decoded content, and so every
            // checksum, is unchanged; Go's decoder accepts it too.
            expect(compressed, `byte ${i} ^ 0x${mask.toString(16)} accepted in an uncompressed file`).toBe(true);
            expect(i >= 107 && i < good.length - 24, `byte ${i} accepted outside LZ4 block data`).toBe(true);
            expect(await logical(bad), `byte ${i} ^ 0x${mask.toString(16)} changed content silently`).toBe(content);
            continue;
          }
          expect(code.startsWith('ERR_LTX_'), `byte ${i} ^ 0x${mask.toString(16)} gave ${code}`).toBe(true);
          if (i < 4) expect(code).toBe('ERR_LTX_BAD_MAGIC');
          // Go does not look at the 20 reserved header bytes, and neither do we:
          // the header is accepted, and only the file checksum (which covers
          // all 100 header bytes) exposes the change.
          if (i >= 80 && i < 100) expect(code).toBe('ERR_LTX_CHECKSUM_MISMATCH');
          // PostApply is hashed into the file checksum, which is compared first.
          if (i >= good.length - 16) expect(code).toBe('ERR_LTX_CHECKSUM_MISMATCH');
        }
      }
      if (!compressed) expect(seen.get('ok')).toBeUndefined();
      // Benign re-encodings are rare; nearly every change is caught.
      expect((seen.get('ok') ?? 0) / (2 * good.length)).toBeLessThan(0.02);
      expect(seen.has('ERR_LTX_HEADER_INVALID')).toBe(true);
      if (compressed) expect(seen.has('ERR_LTX_LZ4')).toBe(true);
    }, 120_000);

    it(`${name}: every truncation is ERR_LTX_TRUNCATED`, async () => {
      const good = await make();
      for (let n = 0; n < good.length; n++) {
        expect(await outcome(good.subarray(0, n)), `length ${n}`).toBe('ERR_LTX_TRUNCATED');
      }
    }, 120_000);
  }
});

describe('garbage after a valid header', () => {
  it('is rejected with a typed error, never a crash or a hang', async () => {
    const rand = rng(4242);
    const seen = new Set<string>();
    for (let t = 0; t < 600; t++) {
      const flags = t % 2;
      const h = newHeader({ flags, pageSize: 512, commit: 8, minTXID: 3n, maxTXID: 3n, preApplyChecksum: 0x8000000000000001n });
      const good = encodeLtxToBuffer(h, [{ pgno: 2, data: new Uint8Array(512) }], 0x8000000000000002n);
      const tail = new Uint8Array(Math.floor(rand() * 3000));
      for (let i = 0; i < tail.length; i++) tail[i] = (rand() * 256) | 0;
      // Sometimes keep a plausible LZ4 frame header so the block layer is reached.
      const keep = flags === 1 && t % 4 === 1 ? 7 : 0;
      const bad = new Uint8Array(100 + keep + tail.length);
      bad.set(good.subarray(0, 100 + keep));
      bad.set(tail, 100 + keep);
      const code = await outcome(bad);
      expect(code.startsWith('ERR_LTX_'), `case ${t} gave ${code}`).toBe(true);
      seen.add(code);
    }
    expect(seen.has('ERR_LTX_LZ4')).toBe(true);
    expect(seen.has('ERR_LTX_TRUNCATED')).toBe(true);
  }, 120_000);
});
