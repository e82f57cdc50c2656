/**
 * Go `time.ParseDuration` syntax, because litefs.yml files are written for
 * LiteFS (Go): "300ms", "1.5s", "1m30s", "2h", "-1s", "0". Results are
 * milliseconds as a (possibly fractional) number.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;

/** Parses a Go duration string into milliseconds; returns undefined if it is not one. */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  // Go accepts a bare "0" (and only zero) without a unit.
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  while (s.length > 0) {
    const m = TERM.exec(s);
    if (m === null) return undefined;
    const whole = m[1]!;
    const frac = m[2];
    // "s" or ".s" alone has no digits: Go rejects it.
    if (whole === '' && (frac === undefined || frac === '')) return undefined;
    const value = Number(`${whole === '' ? '0' : whole}.${frac ?? ''}0`);
    total += value * UNIT_MS[m[3]!]!;
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/**
 * Formats milliseconds the way Go's `Duration.String()` does ("10s",
 * "1m30s", "1h0m0s", "300ms"), for values sent to Consul and for messages.
 */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out: string;
  if (rest < 1000) {
    out = `${trimNumber(rest)}ms`;
  } else {
    const hours = Math.floor(rest / 3_600_000);
    rest -= hours * 3_600_000;
    const minutes = Math.floor(rest / 60_000);
    rest -= minutes * 60_000;
    const seconds = `${trimNumber(rest / 1000)}s`;
    if (hours > 0) out = `${hours}h${minutes}m${seconds}`;
    else if (minutes > 0) out = `${minutes}m${seconds}`;
    else out = seconds;
  }
  return neg ? `-${out}` : out;
}

// Nine significant fraction digits is nanosecond resolution for seconds;
// rounding there hides binary floating-point noise like 1.5000000000000002.
function trimNumber(n: number): string {
  return String(Number(n.toFixed(9)));
}
