/**
 * Plain-JS CRC-64/GO-ISO kernel, used when WebAssembly is unavailable (for
 * example under `node --jitless`) and for inputs too small to be worth a
 * copy into wasm memory.
 *
 * The generator is x^64 + x^4 + x^3 + x + 1, so x^64 ≡ r(x) = x^4+x^3+x+1 and
 * multiplying the register by x^64 or x^128 modulo the generator is a handful
 * of shifts and XORs, no tables. In the reflected bit order a multiplication
 * by x^k is a right shift by k; the k bits that fall off the bottom are the
 * overflow H (moved to the top, `A << (64-k)`), and H·x^64 ≡ H·r =
 * H ^ H>>1 ^ H>>3 ^ H>>4 fits back into 64 bits as long as k ≤ 60.
 *
 * Per 16 input bytes (words A = reg ^ w0, B = w1):
 *   reg' = A·x^128 ^ B·x^64 = A·r² ^ B·r, with r² = 1 + x^2 + x^6 + x^8,
 * i.e. lo64 = A ^ A>>2 ^ A>>6 ^ A>>8 ^ B ^ B>>1 ^ B>>3 ^ B>>4 and overflow
 * H = A<<62 ^ A<<58 ^ A<<56 ^ B<<63 ^ B<<61 ^ B<<60, then reg' = lo64 ^ H·r.
 * The register is held as two uint32 halves, so there is no BigInt here.
 *
 * `s` is the CRC register (already inverted, i.e. Go's `^crc`): s[0] low
 * half, s[1] high half.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function jsUpdate(s: Uint32Array, data: Uint8Array): void {
  let lo = s[0]! | 0;
  let hi = s[1]! | 0;
  const n = data.length;
  let i = 0;

  if (LITTLE_ENDIAN && n >= 24) {
    // Word loads need a 4-aligned view; feed up to 3 leading bytes one by one.
    const head = (4 - (data.byteOffset & 3)) & 3;
    for (; i < head; i++) {
      const al = lo ^ data[i]!;
      const h = al << 24;
      lo = (al >>> 8) | (hi << 24);
      hi = (hi >>> 8) ^ h ^ (h >>> 1) ^ (h >>> 3) ^ (h >>> 4);
    }
    const words = (n - i) >>> 2;
    const w = new Uint32Array(data.buffer, data.byteOffset + i, words);
    const end16 = words & ~3;
    let j = 0;
    for (; j < end16; j += 4) {
      const al = lo ^ w[j]!;
      const ah = hi ^ w[j + 1]!;
      const bl = w[j + 2]!;
      const bh = w[j + 3]!;
      const h = (al << 30) ^ (al << 26) ^ (al << 24) ^ (bl << 31) ^ (bl << 29) ^ (bl << 28);
      lo =
        al ^
        ((al >>> 2) | (ah << 30)) ^
        ((al >>> 6) | (ah << 26)) ^
        ((al >>> 8) | (ah << 24)) ^
        bl ^
        ((bl >>> 1) | (bh << 31)) ^
        ((bl >>> 3) | (bh << 29)) ^
        ((bl >>> 4) | (bh << 28)) ^
        (h << 31) ^
        (h << 29) ^
        (h << 28);
      hi = ah ^ (ah >>> 2) ^ (ah >>> 6) ^ (ah >>> 8) ^ bh ^ (bh >>> 1) ^ (bh >>> 3) ^ (bh >>> 4) ^ h ^ (h >>> 1) ^ (h >>> 3) ^ (h >>> 4);
    }
    if (words - j >= 2) {
      // One 8-byte step: reg' = A·r.
      const al = lo ^ w[j]!;
      const ah = hi ^ w[j + 1]!;
      const h = (al << 31) ^ (al << 29) ^ (al << 28);
      lo = al ^ ((al >>> 1) | (ah << 31)) ^ ((al >>> 3) | (ah << 29)) ^ ((al >>> 4) | (ah << 28)) ^ (h << 31) ^ (h << 29) ^ (h << 28);
      hi = ah ^ (ah >>> 1) ^ (ah >>> 3) ^ (ah >>> 4) ^ h ^ (h >>> 1) ^ (h >>> 3) ^ (h >>> 4);
      j += 2;
    }
    i += j * 4;
  }

  for (; i < n; i++) {
    // One byte: reg' = (reg ^ b)·x^8; the overflow byte lands in the high half only.
    const al = lo ^ data[i]!;
    const h = al << 24;
    lo = (al >>> 8) | (hi << 24);
    hi = (hi >>> 8) ^ h ^ (h >>> 1) ^ (h >>> 3) ^ (h >>> 4);
  }
  s[0] = lo;
  s[1] = hi;
}

/**
 * Feeds the 4 bytes of `pgno` in big-endian order (the page-checksum prefix)
 * into the register in one 32-bit step: reg' = (reg ^ bswap(pgno))·x^32.
 */
export function updatePgno(s: Uint32Array, pgno: number): void {
  const bswapped = ((pgno & 0xff) << 24) | ((pgno & 0xff00) << 8) | ((pgno >>> 8) & 0xff00) | (pgno >>> 24);
  const al = s[0]! ^ bswapped;
  const hi = s[1]!;
  s[0] = hi ^ (al << 31) ^ (al << 29) ^ (al << 28);
  s[1] = al ^ (al >>> 1) ^ (al >>> 3) ^ (al >>> 4);
}
