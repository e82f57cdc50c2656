/**
 * xxHash32 (seed 0 by default), as used by the LZ4 frame format for the
 * header checksum byte, block checksums and the content checksum. Streaming,
 * 32-bit integer arithmetic via Math.imul.
 */

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function readLE(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

export class Xxh32 {
  private v1 = 0;
  private v2 = 0;
  private v3 = 0;
  private v4 = 0;
  private total = 0;
  private readonly mem = new Uint8Array(16);
  private memLen = 0;

  constructor(private readonly seed = 0) {
    this.reset();
  }

  reset(): this {
    const s = this.seed | 0;
    this.v1 = (s + P1 + P2) | 0;
    this.v2 = (s + P2) | 0;
    this.v3 = s;
    this.v4 = (s - P1) | 0;
    this.total = 0;
    this.memLen = 0;
    return this;
  }

  update(data: Uint8Array): this {
    const n = data.length;
    this.total += n;
    let i = 0;
    if (this.memLen > 0) {
      const take = Math.min(16 - this.memLen, n);
      this.mem.set(data.subarray(0, take), this.memLen);
      this.memLen += take;
      i = take;
      if (this.memLen < 16) return this;
      this.stripes(this.mem, 0, 16);
      this.memLen = 0;
    }
    const stripeEnd = i + ((n - i) & ~15);
    if (stripeEnd > i) this.stripes(data, i, stripeEnd);
    if (stripeEnd < n) {
      this.mem.set(data.subarray(stripeEnd), 0);
      this.memLen = n - stripeEnd;
    }
    return this;
  }

  private stripes(b: Uint8Array, start: number, end: number): void {
    let v1 = this.v1,
      v2 = this.v2,
      v3 = this.v3,
      v4 = this.v4;
    const abs = b.byteOffset + start;
    if (LITTLE_ENDIAN && (abs & 3) === 0) {
      const w = new Uint32Array(b.buffer, abs, (end - start) >>> 2);
      for (let j = 0; j < w.length; j += 4) {
        v1 = Math.imul(rotl((v1 + Math.imul(w[j]!, P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(w[j + 1]!, P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(w[j + 2]!, P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(w[j + 3]!, P2)) | 0, 13), P1);
      }
    } else {
      for (let i = start; i < end; i += 16) {
        v1 = Math.imul(rotl((v1 + Math.imul(readLE(b, i), P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(readLE(b, i + 4), P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(readLE(b, i + 8), P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(readLE(b, i + 12), P2)) | 0, 13), P1);
      }
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
  }

  /** The hash of everything fed so far, as an unsigned 32-bit number. */
  digest(): number {
    let h: number;
    if (this.total >= 16) {
      h = (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0;
    } else {
      h = (this.seed + P5) | 0;
    }
    h = (h + this.total) | 0; // the length enters mod 2^32
    const m = this.mem;
    let i = 0;
    for (; i + 4 <= this.memLen; i += 4) {
      h = Math.imul(rotl((h + Math.imul(readLE(m, i), P3)) | 0, 17), P4);
    }
    for (; i < this.memLen; i++) {
      h = Math.imul(rotl((h + Math.imul(m[i]!, P5)) | 0, 11), P1);
    }
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }
}

export function xxh32(data: Uint8Array, seed = 0): number {
  return new Xxh32(seed).update(data).digest();
}
