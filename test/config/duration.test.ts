import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from '../../src/config/duration.js';

describe('parseGoDuration (Go time.ParseDuration syntax)', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['300ms', 300],
    ['1.5s', 1500],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['1h2m3s4ms', 3_723_004],
    ['.5s', 500],
    ['5.s', 5000],
    ['1000us', 1],
    ['1000µs', 1],
    ['1000μs', 1],
    ['2000000ns', 2],
    ['+10s', 10_000],
    ['-1s', -1000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '10', '10x', 's', '.s', '1 s', '1s ', '1d', '--1s', '1.2.3s', 'ten seconds', '1sm'])('rejects %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});

describe('formatGoDuration (Go Duration.String)', () => {
  it.each([
    [0, '0s'],
    [300, '300ms'],
    [1500, '1.5s'],
    [10_000, '10s'],
    [90_000, '1m30s'],
    [3_600_000, '1h0m0s'],
    [86_400_000, '24h0m0s'],
    [-2000, '-2s'],
  ])('%d ms = %s', (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
    expect(parseGoDuration(text)).toBe(ms);
  });
});
