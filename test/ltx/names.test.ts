import { describe, expect, it } from 'vitest';
import {
  checksumFromJSON,
  checksumToJSON,
  formatChecksum,
  formatPos,
  formatTXID,
  isZeroPos,
  ltxFilename,
  parseChecksum,
  parseLtxFilename,
  parsePos,
  parseTXID,
  posFromJSON,
  posToJSON,
  txidFromJSON,
  txidToJSON,
} from '../../src/ltx/names.js';

const parseErr = expect.objectContaining({ code: 'ERR_LTX_PARSE' });

describe('TXID and checksum strings', () => {
  it('formats 16 lowercase hex digits and parses either case', () => {
    expect(formatTXID(13n)).toBe('000000000000000d');
    expect(formatTXID((1n << 64n) - 1n)).toBe('ffffffffffffffff');
    expect(formatChecksum(0xfe3831a381c602b9n)).toBe('fe3831a381c602b9');
    expect(parseTXID('000000000000000d')).toBe(13n);
    expect(parseTXID('00000000000000FF')).toBe(255n);
    expect(parseChecksum('FE3831A381C602B9')).toBe(0xfe3831a381c602b9n);
  });

  it('requires exactly 16 hex digits, like Go', () => {
    for (const bad of [
      '',
      'd',
      '0000000000000000d',
      '000000000000000',
      '000000000000000g',
      '0x0000000000000d',
      ' 00000000000000d',
      '+00000000000000d',
    ]) {
      expect(() => parseTXID(bad)).toThrow(parseErr);
      expect(() => parseChecksum(bad)).toThrow(parseErr);
    }
  });
});

describe('LTX file names', () => {
  it('formats and parses %016x-%016x.ltx', () => {
    expect(ltxFilename(1n, 13n)).toBe('0000000000000001-000000000000000d.ltx');
    expect(parseLtxFilename('0000000000000001-000000000000000d.ltx')).toEqual({ minTXID: 1n, maxTXID: 13n });
  });

  it('returns null for anything else (uppercase, temp files, other names)', () => {
    for (const bad of [
      '0000000000000001-000000000000000D.ltx',
      '0000000000000001-000000000000000d.ltx.tmp',
      '0000000000000001-000000000000000d.ltx.123.tmp',
      '000000000000001-000000000000000d.ltx',
      'x0000000000000001-000000000000000d.ltx',
      '0000000000000001_000000000000000d.ltx',
      'database',
    ]) {
      expect(parseLtxFilename(bad)).toBeNull();
    }
  });
});

describe('positions', () => {
  const pos = { txid: 13n, postApplyChecksum: 0xfe3831a381c602b9n };

  it('formats and parses TXID/checksum (33 characters)', () => {
    expect(formatPos(pos)).toBe('000000000000000d/fe3831a381c602b9');
    expect(parsePos('000000000000000d/fe3831a381c602b9')).toEqual(pos);
    expect(() => parsePos('000000000000000d/fe3831a381c602b')).toThrow(parseErr);
    expect(() => parsePos('000000000000000d-fe3831a381c602b9')).toThrow(parseErr);
    expect(() => parsePos('000000000000000z/fe3831a381c602b9')).toThrow(parseErr);
    expect(isZeroPos({ txid: 0n, postApplyChecksum: 0n })).toBe(true);
    expect(isZeroPos(pos)).toBe(false);
  });

  it('uses the JSON forms Go produces (hex strings; null means 0)', () => {
    expect(JSON.stringify(posToJSON(pos))).toBe('{"TXID":"000000000000000d","PostApplyChecksum":"fe3831a381c602b9"}');
    expect(posFromJSON(JSON.parse('{"TXID":"000000000000000d","PostApplyChecksum":"fe3831a381c602b9"}'))).toEqual(pos);
    expect(posFromJSON({ TXID: null, PostApplyChecksum: null })).toEqual({ txid: 0n, postApplyChecksum: 0n });
    expect(txidToJSON(1n)).toBe('0000000000000001');
    expect(checksumToJSON(1n << 63n)).toBe('8000000000000000');
    expect(txidFromJSON(null)).toBe(0n);
    expect(checksumFromJSON('8000000000000000')).toBe(1n << 63n);
    expect(() => txidFromJSON(13)).toThrow(parseErr);
    expect(() => checksumFromJSON({})).toThrow(parseErr);
    expect(() => posFromJSON('000000000000000d/fe3831a381c602b9')).toThrow(parseErr);
    expect(() => posFromJSON({ TXID: 'zz' })).toThrow(parseErr);
  });
});
