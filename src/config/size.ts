/**
 * Byte counts in litefs.yml: a plain integer, or a number with a unit.
 * Decimal units (KB, MB, GB, TB) are powers of 1000 and binary ones (KiB,
 * MiB, GiB, TiB) powers of 1024, as `ls -h --si` and `ls -h` mean them;
 * case is ignored so "100mb" is not a trap.
 */
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parses "100MB", "1.5GiB" or "4096" into bytes; undefined if it is not a size. */
export function parseByteSize(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (m === null) return undefined;
  const unit = m[2]!.toLowerCase();
  const factor = unit === '' ? 1 : UNITS[unit];
  if (factor === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * factor);
  return Number.isSafeInteger(n) ? n : undefined;
}
