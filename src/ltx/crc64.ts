/**
 * CRC-64/GO-ISO, the hash LTX uses for page, database and file checksums:
 * Go's `crc64.Update(crc, crc64.MakeTable(crc64.ISO), p)`, i.e. reflected
 * polynomial 0xD800000000000000, register initialised to and finalised with
 * all ones. check("123456789") = 0xb90956c775a41001, crc("") = 0.
 *
 * Two interchangeable kernels do the work: a WebAssembly one (default) and a
 * plain-JS one (fallback when WebAssembly is unavailable, and for inputs too
 * short to repay the copy into wasm memory). Both keep the 64-bit register as
 * two uint32 halves at the JS boundary, so no BigInt is created per byte or
 * per page; BigInt appears only in the public results.
 */
import { jsUpdate, updatePgno } from './crc64-js.js';
import { createWasmKernel, WASM_CHUNK, WASM_DATA_OFFSET, type WasmCrcKernel } from './crc64-wasm.js';

export type Crc64Engine = 'wasm' | 'js';

const kernel: WasmCrcKernel | null = createWasmKernel();
let engine: Crc64Engine = kernel === null ? 'js' : 'wasm';

// Under this many bytes the JS kernel beats copying into wasm memory.
const WASM_MIN_BYTES = 64;

/** The kernel in use. */
export function crc64Engine(): Crc64Engine {
  return engine;
}

/**
 * Selects a kernel (for tests and benchmarks; results are identical).
 * Returns false when 'wasm' is asked for but unavailable.
 */
export function setCrc64Engine(name: Crc64Engine): boolean {
  if (name === 'wasm' && kernel === null) return false;
  engine = name;
  return true;
}

function wasmUpdate(k: WasmCrcKernel, s: Uint32Array, data: Uint8Array): void {
  k.reg[0] = s[0]!;
  k.reg[1] = s[1]!;
  for (let off = 0; off < data.length; off += WASM_CHUNK) {
    const n = Math.min(WASM_CHUNK, data.length - off);
    k.mem.set(n === data.length ? data : data.subarray(off, off + n), WASM_DATA_OFFSET);
    k.update(WASM_DATA_OFFSET, n);
  }
  s[0] = k.reg[0]!;
  s[1] = k.reg[1]!;
}

/** Folds `data` into the (inverted) register `s` = [low half, high half]. */
export function crc64UpdateRegister(s: Uint32Array, data: Uint8Array): void {
  if (engine === 'wasm' && kernel !== null && data.length >= WASM_MIN_BYTES) wasmUpdate(kernel, s, data);
  else jsUpdate(s, data);
}

function setRegisterFromCrc(s: Uint32Array, crc: bigint): void {
  const inv = BigInt.asUintN(64, ~crc);
  s[0] = Number(inv & 0xffffffffn);
  s[1] = Number(inv >> 32n);
}

function crcFromRegister(s: Uint32Array): bigint {
  return (BigInt(~s[1]! >>> 0) << 32n) | BigInt(~s[0]! >>> 0);
}

const scratch = new Uint32Array(2);

/**
 * CRC-64/GO-ISO of `data`, continuing from `prev` (the result of an earlier
 * call over the preceding bytes), so crc64(b, crc64(a)) === crc64(a ‖ b).
 */
export function crc64(data: Uint8Array, prev: bigint = 0n): bigint {
  setRegisterFromCrc(scratch, prev);
  crc64UpdateRegister(scratch, data);
  return crcFromRegister(scratch);
}

/** Incremental CRC-64/GO-ISO for data that arrives in pieces. */
export class Crc64 {
  private readonly s = new Uint32Array(2);

  constructor(prev: bigint = 0n) {
    setRegisterFromCrc(this.s, prev);
  }

  update(data: Uint8Array): this {
    crc64UpdateRegister(this.s, data);
    return this;
  }

  /** The CRC of everything fed so far; the hasher stays usable. */
  digest(): bigint {
    return crcFromRegister(this.s);
  }

  reset(prev: bigint = 0n): this {
    setRegisterFromCrc(this.s, prev);
    return this;
  }
}

/**
 * Writes FLAG | crc(u32be(pgno) ‖ data) as two uint32 halves into
 * out[2*index] (low) and out[2*index+1] (high): the layout of a
 * little-endian BigUint64Array viewed as a Uint32Array.
 */
export function pageChecksumInto(pgno: number, data: Uint8Array, out: Uint32Array, index: number): void {
  const s = scratch;
  s[0] = 0xffffffff;
  s[1] = 0xffffffff;
  updatePgno(s, pgno);
  crc64UpdateRegister(s, data);
  out[2 * index] = ~s[0]!;
  out[2 * index + 1] = ~s[1]! | 0x80000000;
}

/**
 * Page checksums of `count` consecutive pages held back to back in `buf`,
 * the first one numbered `firstPgno`, written from out[2*index]. The wasm
 * path copies the run into wasm memory once instead of once per page.
 */
export function pageChecksumsInto(
  buf: Uint8Array,
  pageSize: number,
  firstPgno: number,
  count: number,
  out: Uint32Array,
  index: number,
): void {
  const k = kernel;
  if (engine !== 'wasm' || k === null || pageSize < WASM_MIN_BYTES) {
    for (let i = 0; i < count; i++) {
      pageChecksumInto(firstPgno + i, buf.subarray(i * pageSize, (i + 1) * pageSize), out, index + i);
    }
    return;
  }
  const perChunk = Math.max(1, Math.floor(WASM_CHUNK / pageSize));
  const s = scratch;
  for (let done = 0; done < count; done += perChunk) {
    const n = Math.min(perChunk, count - done);
    k.mem.set(buf.subarray(done * pageSize, (done + n) * pageSize), WASM_DATA_OFFSET);
    for (let i = 0; i < n; i++) {
      s[0] = 0xffffffff;
      s[1] = 0xffffffff;
      updatePgno(s, firstPgno + done + i);
      k.reg[0] = s[0]!;
      k.reg[1] = s[1]!;
      k.update(WASM_DATA_OFFSET + i * pageSize, pageSize);
      const o = 2 * (index + done + i);
      out[o] = ~k.reg[0]!;
      out[o + 1] = ~k.reg[1]! | 0x80000000;
    }
  }
}
