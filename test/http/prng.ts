/** Deterministic PRNG (mulberry32) so fuzz failures reproduce from the seed. */
export function prng(seed: number): { next(): number; int(n: number): number; bytes(n: number): Buffer } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  return { next, int, bytes };
}

/** Splits `buf` into random-size pieces (1..maxPiece) as an async source. */
export async function* splitSource(buf: Buffer, rand: { int(n: number): number }, maxPiece: number): AsyncGenerator<Uint8Array> {
  let o = 0;
  while (o < buf.length) {
    const n = 1 + rand.int(maxPiece);
    yield buf.subarray(o, o + n);
    o += n;
  }
}
