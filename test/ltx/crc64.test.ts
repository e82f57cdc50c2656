import { afterEach, describe, expect, it } from 'vitest';
import { compressFrameSync } from 'lz4-napi';
import { Crc64, crc64, crc64Engine, setCrc64Engine, type Crc64Engine } from '../../src/ltx/crc64.js';
import { Xxh32, xxh32 } from '../../src/ltx/xxh32.js';
import { randInt, randomBytes, referenceCrc64, rng } from './helpers.js';

const enc = new TextEncoder();
const defaultEngine = crc64Engine();
afterEach(() => {
  setCrc64Engine(defaultEngine);
});

describe('CRC-64/GO-ISO', () => {
  it('uses the wasm kernel by default on this platform', () => {
    expect(defaultEngine).toBe('wasm');
  });

  for (const engine of ['wasm', 'js'] as Crc64Engine[]) {
    describe(`${engine} kernel`, () => {
      it('matches the catalogue check value and crc("") = 0', () => {
        expect(setCrc64Engine(engine)).toBe(true);
        expect(crc64(enc.encode('123456789'))).toBe(0xb90956c775a41001n);
        expect(crc64(new Uint8Array(0))).toBe(0n);
        expect(new Crc64().digest()).toBe(0n);
        // A longer input takes the word/wasm path rather than the byte loop.
        const long = enc.encode('123456789'.repeat(50));
        expect(crc64(long)).toBe(referenceCrc64(long));
      });

      it('matches a bitwise BigInt reference on random buffers of every shape', () => {
        setCrc64Engine(engine);
        const rand = rng(0x5eed + engine.length);
        const backing = randomBytes(rand, 5000);
        for (let t = 0; t < 300; t++) {
          const len = t < 100 ? t : randInt(rand, 0, 4200);
          const off = randInt(rand, 0, 7); // every alignment
          const view = backing.subarray(off, off + len);
          expect(crc64(view)).toBe(referenceCrc64(view));
        }
      });

      it('continues from a previous value (crc(b, crc(a)) = crc(a‖b)) at random split points', () => {
        setCrc64Engine(engine);
        const rand = rng(99);
        const data = randomBytes(rand, 3 * 4096 + 17);
        const whole = crc64(data);
        expect(whole).toBe(referenceCrc64(data));
        for (let t = 0; t < 50; t++) {
          const cut = randInt(rand, 0, data.length);
          expect(crc64(data.subarray(cut), crc64(data.subarray(0, cut)))).toBe(whole);
          const h = new Crc64();
          let i = 0;
          while (i < data.length) {
            const n = randInt(rand, 0, 300);
            h.update(data.subarray(i, i + n));
            i += n;
          }
          expect(h.digest()).toBe(whole);
        }
      });
    });
  }

  it('gives identical results from both kernels across the wasm staging-chunk boundary', () => {
    const rand = rng(7);
    const big = randomBytes(rand, (1 << 20) * 2 + 12345);
    setCrc64Engine('wasm');
    const w = crc64(big);
    const wSplit = crc64(big.subarray(1_000_001), crc64(big.subarray(0, 1_000_001)));
    setCrc64Engine('js');
    const j = crc64(big);
    expect(w).toBe(j);
    expect(wSplit).toBe(j);
    // Spot-check the tail against the reference too.
    const tail = big.subarray(big.length - 3000);
    expect(crc64(tail)).toBe(referenceCrc64(tail));
  });

  it('Crc64.reset starts over, optionally from a previous value', () => {
    const a = enc.encode('hello ');
    const b = enc.encode('world');
    const h = new Crc64().update(a);
    const mid = h.digest();
    h.update(b);
    const ab = h.digest();
    expect(h.reset().update(a).update(b).digest()).toBe(ab);
    expect(h.reset(mid).update(b).digest()).toBe(ab);
    expect(new Crc64(mid).update(b).digest()).toBe(ab);
    expect(ab).toBe(referenceCrc64(enc.encode('hello world')));
  });
});

describe('xxh32', () => {
  it('matches published vectors', () => {
    expect(xxh32(new Uint8Array(0))).toBe(0x02cc5d05);
    expect(xxh32(enc.encode('a'))).toBe(0x550d7456);
    expect(xxh32(enc.encode('abc'))).toBe(0x32d153ff);
    expect(xxh32(enc.encode('Nobody inspects the spammish repetition'))).toBe(0xe2293b2f);
  });

  it('matches the content checksum lz4_flex writes into frames, streaming or not', () => {
    const rand = rng(3);
    for (let t = 0; t < 60; t++) {
      const len = t < 40 ? t : randInt(rand, 0, 70000);
      const data = Buffer.from(randomBytes(rand, len));
      const frame = compressFrameSync(data, { contentChecksum: true });
      const want = frame.readUInt32LE(frame.length - 4);
      expect(xxh32(data)).toBe(want);
      const h = new Xxh32();
      let i = 0;
      while (i < len) {
        const n = randInt(rand, 0, 40);
        h.update(data.subarray(i, i + n));
        i += n;
      }
      expect(h.digest()).toBe(want);
      // Unaligned views take the byte path.
      const shifted = Buffer.alloc(len + 1);
      data.copy(shifted, 1);
      expect(xxh32(shifted.subarray(1))).toBe(want);
    }
  });
});
