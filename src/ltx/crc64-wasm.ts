/**
 * WebAssembly CRC-64/GO-ISO kernel: the same shift-and-XOR folding as
 * crc64-js.ts, but on native i64 registers, which is about twice as fast as
 * the two-uint32 JS form (see bench/ltx.bench.mjs). The module is assembled
 * here from a readable instruction list rather than shipped as an opaque
 * blob, so every byte can be reviewed; it has no imports and one export
 * besides its memory:
 *
 *   update(ptr: i32, len: i32)   register (inverted CRC) at mem[0..8), LE;
 *                                folds mem[ptr..ptr+len) into it.
 */

// --- a minimal assembler -----------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asIntN(64, v);
  for (;;) {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

type Code = number[];
const get = (i: number): Code => [0x20, i];
const set = (i: number): Code => [0x21, i];
const i64c = (v: number): Code => [0x42, ...sleb(BigInt(v))];
const i32c = (v: number): Code => [0x41, ...sleb(BigInt(v))];
const shr = (e: Code, k: number): Code => [...e, ...i64c(k), 0x88]; // i64.shr_u
const shl = (e: Code, k: number): Code => [...e, ...i64c(k), 0x86]; // i64.shl
const xor = (...es: Code[]): Code => {
  const out = [...es[0]!];
  for (let i = 1; i < es.length; i++) out.push(...es[i]!, 0x85); // i64.xor
  return out;
};
const load64 = (ptr: number, off: number): Code => [...get(ptr), 0x29, 3, ...uleb(off)]; // i64.load
const load8 = (ptr: number): Code => [...get(ptr), 0x31, 0, 0]; // i64.load8_u
const addI32 = (local: number, v: number): Code => [...get(local), ...i32c(v), 0x6a, ...set(local)];
const subI32 = (local: number, v: number): Code => [...get(local), ...i32c(v), 0x6b, ...set(local)];

// x^64 ≡ r = 1 + x + x^3 + x^4: H·r for an overflow word H.
const reduce = (h: Code): Code => xor(h, shr(h, 1), shr(h, 3), shr(h, 4));
// Low 64 bits and overflow of a·r and a·r² (r² = 1 + x^2 + x^6 + x^8).
const r1lo = (a: Code): Code => xor(a, shr(a, 1), shr(a, 3), shr(a, 4));
const r1hi = (a: Code): Code => xor(shl(a, 63), shl(a, 61), shl(a, 60));
const r2lo = (a: Code): Code => xor(a, shr(a, 2), shr(a, 6), shr(a, 8));
const r2hi = (a: Code): Code => xor(shl(a, 62), shl(a, 58), shl(a, 56));

// params: 0 ptr, 1 len (i32); locals: 2 crc, 3 a, 4 b, 5 h (i64)
const PTR = 0,
  LEN = 1,
  CRC = 2,
  A = 3,
  B = 4,
  H = 5;

const body: Code = [
  ...i32c(0),
  0x29,
  3,
  0,
  ...set(CRC),
  // while (len >= 16) { crc = (crc ^ w0)·r² ^ w1·r }
  0x02,
  0x40,
  0x03,
  0x40,
  ...get(LEN),
  ...i32c(16),
  0x49,
  0x0d,
  1, // i32.lt_u; br_if out
  ...xor(get(CRC), load64(PTR, 0)),
  ...set(A),
  ...load64(PTR, 8),
  ...set(B),
  ...xor(r2hi(get(A)), r1hi(get(B))),
  ...set(H),
  ...xor(r2lo(get(A)), r1lo(get(B)), reduce(get(H))),
  ...set(CRC),
  ...addI32(PTR, 16),
  ...subI32(LEN, 16),
  0x0c,
  0,
  0x0b,
  0x0b,
  // while (len != 0) { crc = (crc ^ byte)·x^8 }
  0x02,
  0x40,
  0x03,
  0x40,
  ...get(LEN),
  0x45,
  0x0d,
  1, // i32.eqz; br_if out
  ...xor(get(CRC), load8(PTR)),
  ...set(A),
  ...shl(get(A), 56),
  ...set(H),
  ...xor(shr(get(A), 8), reduce(get(H))),
  ...set(CRC),
  ...addI32(PTR, 1),
  ...subI32(LEN, 1),
  0x0c,
  0,
  0x0b,
  0x0b,
  ...i32c(0),
  ...get(CRC),
  0x37,
  3,
  0, // i64.store
  0x0b,
];

/** Bytes of input staged per call; the module's memory is this plus 64 KiB. */
export const WASM_CHUNK = 1 << 20;
/** Offset of the staging area in wasm memory (the register sits at 0). */
export const WASM_DATA_OFFSET = 64;
const MEMORY_PAGES = WASM_CHUNK / 65536 + 1;

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

function moduleBytes(): Uint8Array {
  const func = [1, 4, 0x7e, ...body]; // one local group: 4 × i64
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 0]), // type: (i32, i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, ...uleb(MEMORY_PAGES)]), // memory, fixed size
    ...section(7, [2, ...name('mem'), 2, 0, ...name('update'), 0, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
}

export interface WasmCrcKernel {
  /** Whole wasm memory; bytes [WASM_DATA_OFFSET, +WASM_CHUNK) are the staging area. */
  readonly mem: Uint8Array;
  /** The register, as two uint32 halves at mem[0..8). */
  readonly reg: Uint32Array;
  readonly update: (ptr: number, len: number) => void;
}

// @types/node 20 does not declare WebAssembly; this is the slice we use.
interface WasmGlobal {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/** Instantiates the kernel, or returns null where WebAssembly is unavailable. */
export function createWasmKernel(): WasmCrcKernel | null {
  try {
    const wasm = (globalThis as { WebAssembly?: WasmGlobal }).WebAssembly;
    if (wasm === undefined) return null;
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) return null; // reg view assumes LE
    const { exports } = new wasm.Instance(new wasm.Module(moduleBytes()), {});
    const buffer: unknown = (exports.mem as { buffer?: unknown } | undefined)?.buffer;
    const update = exports.update;
    if (!(buffer instanceof ArrayBuffer) || typeof update !== 'function') return null;
    return {
      mem: new Uint8Array(buffer),
      reg: new Uint32Array(buffer, 0, 2),
      update: update as (ptr: number, len: number) => void,
    };
  } catch {
    return null;
  }
}
