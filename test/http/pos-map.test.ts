import { describe, expect, it } from 'vitest';
import {
  decodePosMap,
  encodePosMap,
  isStreamError,
  maxPosMapBytes,
  readPosMap,
  type PosMap,
  type StreamErrorCode,
} from '../../src/http/protocol/index.js';
import { prng, splitSource } from './prng.js';

function expectCode(fn: () => unknown, code: StreamErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(isStreamError(thrown, code), `expected ${code}, got ${String(thrown)}`).toBe(true);
}

async function expectCodeAsync(p: Promise<unknown>, code: StreamErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStreamError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

/** Hand-built entry in Go's layout, independent of the encoder under test. */
function entry(name: string, txid: bigint, chk: bigint): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length + 16);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeBigUInt64BE(txid, 4 + n.length);
  b.writeBigUInt64BE(chk, 12 + n.length);
  return b;
}

function count(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

describe('position map', () => {
  it('encodes in Go layout with names sorted by UTF-8 bytes', () => {
    const map: PosMap = new Map([
      ['\u{1F600}.db', { txid: 3n, postApplyChecksum: 0x8000000000000003n }],
      ['b.db', { txid: 2n, postApplyChecksum: 0x9000000000000002n }],
      ['\uFF5A.db', { txid: 1n, postApplyChecksum: 0xffffffffffffffffn }],
      ['a.db', { txid: 0n, postApplyChecksum: 0n }],
    ]);
    // U+FF5A is EF BD 9A and U+1F600 is F0 9F 98 80: byte order puts the
    // BMP character first although UTF-16 code-unit order would not.
    const expected = Buffer.concat([
      count(4),
      entry('a.db', 0n, 0n),
      entry('b.db', 2n, 0x9000000000000002n),
      entry('\uFF5A.db', 1n, 0xffffffffffffffffn),
      entry('\u{1F600}.db', 3n, 0x8000000000000003n),
    ]);
    expect(encodePosMap(map).equals(expected)).toBe(true);
    expect(decodePosMap(expected)).toEqual(map);
  });

  it('encodes an empty map as a zero count', () => {
    expect(encodePosMap(new Map()).toString('hex')).toBe('00000000');
    expect(decodePosMap(Buffer.alloc(4)).size).toBe(0);
  });

  it('reads from a source split into arbitrary pieces', async () => {
    const rand = prng(7);
    const map: PosMap = new Map();
    for (let i = 0; i < 50; i++) map.set(`db${i}.sqlite`, { txid: BigInt(i * 1000), postApplyChecksum: BigInt(i) << 40n });
    const enc = encodePosMap(map);
    for (let round = 0; round < 20; round++) {
      expect(await readPosMap(splitSource(enc, rand, 1 + rand.int(40)))).toEqual(map);
    }
  });

  it('rejects counts over the limit before reading entries', async () => {
    const body = Buffer.concat([count(5), entry('a', 1n, 1n)]);
    expectCode(() => decodePosMap(body, { maxEntries: 4 }), 'ERR_STREAM_TOO_MANY_ENTRIES');
    await expectCodeAsync(readPosMap([body], { maxEntries: 4 }), 'ERR_STREAM_TOO_MANY_ENTRIES');
    expectCode(() => decodePosMap(count(0xffffffff)), 'ERR_STREAM_TOO_MANY_ENTRIES');
  });

  it('rejects long, empty, non-UTF-8 and path-like names', async () => {
    const long = Buffer.concat([count(1), count(256), Buffer.alloc(256, 0x61), Buffer.alloc(16)]);
    expectCode(() => decodePosMap(long), 'ERR_STREAM_FIELD_TOO_LONG');
    await expectCodeAsync(readPosMap([long]), 'ERR_STREAM_FIELD_TOO_LONG');
    const ok255 = Buffer.concat([count(1), entry('x'.repeat(255), 1n, 2n)]);
    expect(decodePosMap(ok255).get('x'.repeat(255))).toEqual({ txid: 1n, postApplyChecksum: 2n });

    for (const bad of ['', 'a/b', 'a\0b', '.', '..']) {
      expectCode(() => decodePosMap(Buffer.concat([count(1), entry(bad, 1n, 1n)])), 'ERR_STREAM_BAD_NAME');
      expectCode(() => encodePosMap(new Map([[bad, { txid: 1n, postApplyChecksum: 1n }]])), 'ERR_STREAM_BAD_NAME');
    }
    const invalidUtf8 = Buffer.concat([count(1), count(2), Buffer.from([0xc3, 0x28]), Buffer.alloc(16)]);
    expectCode(() => decodePosMap(invalidUtf8), 'ERR_STREAM_BAD_NAME');
    expectCode(() => encodePosMap(new Map([['\uD800x', { txid: 1n, postApplyChecksum: 1n }]])), 'ERR_STREAM_BAD_NAME');
  });

  it('rejects duplicates, trailing bytes and out-of-range values', async () => {
    const dup = Buffer.concat([count(2), entry('a', 1n, 1n), entry('a', 2n, 2n)]);
    expectCode(() => decodePosMap(dup), 'ERR_STREAM_DUPLICATE_NAME');
    const trailing = Buffer.concat([count(1), entry('a', 1n, 1n), Buffer.from([0])]);
    expectCode(() => decodePosMap(trailing), 'ERR_STREAM_TRAILING_DATA');
    await expectCodeAsync(readPosMap([trailing]), 'ERR_STREAM_TRAILING_DATA');
    expectCode(() => encodePosMap(new Map([['a', { txid: -1n, postApplyChecksum: 1n }]])), 'ERR_STREAM_BAD_VALUE');
    expectCode(() => encodePosMap(new Map([['a', { txid: 1n, postApplyChecksum: 1n << 64n }]])), 'ERR_STREAM_BAD_VALUE');
  });

  it('reports truncation at every cut point', async () => {
    const enc = encodePosMap(
      new Map([
        ['one.db', { txid: 5n, postApplyChecksum: 6n }],
        ['two.db', { txid: 7n, postApplyChecksum: 8n }],
      ]),
    );
    for (let cut = 0; cut < enc.length; cut++) {
      expectCode(() => decodePosMap(enc.subarray(0, cut)), 'ERR_STREAM_TRUNCATED');
      await expectCodeAsync(readPosMap([enc.subarray(0, cut)]), 'ERR_STREAM_TRUNCATED');
    }
  });

  it('never throws anything but a StreamError on random input', async () => {
    const rand = prng(1234);
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const buf = rand.bytes(rand.int(80));
      // Bias towards small counts and name lengths so parsing gets deep.
      if (buf.length >= 4 && rand.int(2) === 0) buf.writeUInt32BE(rand.int(3), 0);
      if (buf.length >= 8 && rand.int(2) === 0) buf.writeUInt32BE(rand.int(8), 4);
      try {
        decodePosMap(buf);
        decoded++;
      } catch (err) {
        expect(isStreamError(err), String(err)).toBe(true);
      }
      const viaStream = await readPosMap(splitSource(buf, rand, 7)).then(
        () => 'ok',
        (err: unknown) => (isStreamError(err) ? 'err' : `unexpected ${String(err)}`),
      );
      expect(viaStream === 'ok' || viaStream === 'err', viaStream).toBe(true);
    }
    expect(decoded).toBeGreaterThan(0);
  });

  it('bounds the body size a server should accept', () => {
    expect(maxPosMapBytes(1)).toBe(4 + 4 + 255 + 16);
  });
});
