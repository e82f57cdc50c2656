import { describe, expect, it } from 'vitest';
import { CHECKSUM_FLAG } from '../../src/ltx/checksum.js';
import { LtxError } from '../../src/ltx/errors.js';
import { marshalHeader, marshalTrailer, unmarshalHeader, unmarshalTrailer, validateHeader, validateTrailer } from '../../src/ltx/header.js';
import { HEADER_SIZE, isSnapshot, newHeader, type Header } from '../../src/ltx/types.js';

const base: Header = newHeader({
  flags: 1,
  pageSize: 4096,
  commit: 10,
  minTXID: 5n,
  maxTXID: 7n,
  timestamp: 1700000000123n,
  preApplyChecksum: 0x9c74a15b4e4f246cn,
  walOffset: 32n,
  walSize: 4152n,
  walSalt1: 0xdeadbeef,
  walSalt2: 1,
  nodeID: 0xfedcba9876543210n,
});

function rejects(h: Header, field: string): void {
  let caught: unknown;
  try {
    validateHeader(h);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LtxError);
  expect((caught as LtxError).code).toBe('ERR_LTX_HEADER_INVALID');
  expect((caught as LtxError).field).toBe(field);
  expect((caught as LtxError).message).toContain(field);
}

describe('header layout', () => {
  it('marshals every field big-endian at its v1 offset, reserved bytes zero', () => {
    const b = marshalHeader(base);
    expect(b.length).toBe(HEADER_SIZE);
    const hex = Buffer.from(b).toString('hex');
    expect(hex.slice(0, 8)).toBe('4c545831');
    expect(hex.slice(8, 16)).toBe('00000001');
    expect(hex.slice(16, 24)).toBe('00001000');
    expect(hex.slice(24, 32)).toBe('0000000a');
    expect(hex.slice(32, 48)).toBe('0000000000000005');
    expect(hex.slice(48, 64)).toBe('0000000000000007');
    expect(hex.slice(64, 80)).toBe((1700000000123).toString(16).padStart(16, '0'));
    expect(hex.slice(80, 96)).toBe('9c74a15b4e4f246c');
    expect(hex.slice(96, 112)).toBe('0000000000000020');
    expect(hex.slice(112, 128)).toBe('0000000000001038');
    expect(hex.slice(128, 136)).toBe('deadbeef');
    expect(hex.slice(136, 144)).toBe('00000001');
    expect(hex.slice(144, 160)).toBe('fedcba9876543210');
    expect(hex.slice(160)).toBe('00'.repeat(20));
    expect(unmarshalHeader(b)).toEqual(base);
  });

  it('decodes signed fields as signed and accepts a longer buffer', () => {
    const b = new Uint8Array(120);
    b.set(marshalHeader({ ...base, timestamp: -5n, walOffset: -1n }));
    const h = unmarshalHeader(b);
    expect(h.timestamp).toBe(-5n);
    expect(h.walOffset).toBe(-1n);
    rejects(h, 'walOffset');
  });

  it('rejects a wrong magic and a short buffer with typed errors', () => {
    const b = marshalHeader(base);
    b[3] = 0x32; // "LTX2"
    expect(() => unmarshalHeader(b)).toThrow(expect.objectContaining({ code: 'ERR_LTX_BAD_MAGIC' }));
    expect(() => unmarshalHeader(new Uint8Array(99))).toThrow(expect.objectContaining({ code: 'ERR_LTX_TRUNCATED' }));
  });

  it('accepts what Go accepts: non-zero reserved bytes, commit 0, any timestamp and node id', () => {
    const b = marshalHeader(base);
    b.fill(0xff, 80, 100);
    const h = unmarshalHeader(b);
    expect(() => validateHeader(h)).not.toThrow();
    expect(() => validateHeader({ ...base, commit: 0 })).not.toThrow();
    expect(() => validateHeader({ ...base, timestamp: -(1n << 63n), nodeID: (1n << 64n) - 1n })).not.toThrow();
    expect(() => validateHeader({ ...base, flags: 0 })).not.toThrow();
    expect(() => validateHeader({ ...base, walOffset: 0n, walSize: 0n, walSalt1: 0, walSalt2: 0 })).not.toThrow();
    expect(() => validateHeader({ ...base, minTXID: 1n, preApplyChecksum: 0n })).not.toThrow();
  });
});

describe('header validation (ltx v0.3.14 Header.Validate)', () => {
  const cases: Array<[string, Partial<Header>, string]> = [
    ['unknown flag bits', { flags: 2 }, 'flags'],
    ['high flag bit', { flags: 0x80000001 }, 'flags'],
    ['page size 0', { pageSize: 0 }, 'pageSize'],
    ['page size 256', { pageSize: 256 }, 'pageSize'],
    ['page size 131072', { pageSize: 131072 }, 'pageSize'],
    ['page size not a power of two', { pageSize: 3000 }, 'pageSize'],
    ['min TXID 0', { minTXID: 0n }, 'minTXID'],
    ['max TXID 0', { minTXID: 1n, maxTXID: 0n, preApplyChecksum: 0n }, 'maxTXID'],
    ['min > max', { minTXID: 9n, maxTXID: 8n }, 'maxTXID'],
    ['negative WAL offset', { walOffset: -8n }, 'walOffset'],
    ['negative WAL size', { walSize: -8n }, 'walSize'],
    ['salt without offset', { walOffset: 0n, walSize: 100n }, 'walOffset'],
    ['salt without size', { walSize: 0n }, 'walSize'],
    ['offset without size', { walSalt1: 0, walSalt2: 0, walSize: 0n }, 'walSize'],
    ['size without offset', { walSalt1: 0, walSalt2: 0, walOffset: 0n }, 'walOffset'],
    ['snapshot with pre-apply', { minTXID: 1n }, 'preApplyChecksum'],
    ['incremental without pre-apply', { preApplyChecksum: 0n }, 'preApplyChecksum'],
    ['pre-apply without flag', { preApplyChecksum: 0x1234n }, 'preApplyChecksum'],
    ['commit out of u32 range', { commit: 2 ** 32 }, 'commit'],
    ['TXID out of u64 range', { maxTXID: 1n << 64n }, 'maxTXID'],
  ];
  for (const [name, patch, field] of cases) {
    it(`rejects ${name}`, () => rejects({ ...base, ...patch }, field));
  }

  it('knows snapshots by MinTXID 1', () => {
    expect(isSnapshot({ minTXID: 1n })).toBe(true);
    expect(isSnapshot({ minTXID: 2n })).toBe(false);
  });
});

describe('trailer', () => {
  it('round-trips big-endian', () => {
    const t = { postApplyChecksum: 0xfe3831a381c602b9n, fileChecksum: 0x9496a29358326fb5n };
    const b = marshalTrailer(t);
    expect(Buffer.from(b).toString('hex')).toBe('fe3831a381c602b99496a29358326fb5');
    expect(unmarshalTrailer(b)).toEqual(t);
    expect(() => unmarshalTrailer(b.subarray(0, 15))).toThrow(expect.objectContaining({ code: 'ERR_LTX_TRUNCATED' }));
  });

  it('applies the encoder rules of Trailer.Validate and the deletion rule', () => {
    const ok = { postApplyChecksum: CHECKSUM_FLAG | 5n, fileChecksum: CHECKSUM_FLAG | 7n };
    expect(() => validateTrailer(ok, 3)).not.toThrow();
    expect(() => validateTrailer({ ...ok, postApplyChecksum: CHECKSUM_FLAG }, 0)).not.toThrow();
    const bad: Array<[object, number, string]> = [
      [{ ...ok, postApplyChecksum: 0n }, 3, 'postApplyChecksum'],
      [{ ...ok, postApplyChecksum: 5n }, 3, 'postApplyChecksum'],
      [{ ...ok, fileChecksum: 0n }, 3, 'fileChecksum'],
      [{ ...ok, fileChecksum: 7n }, 3, 'fileChecksum'],
      [ok, 0, 'postApplyChecksum'],
    ];
    for (const [t, commit, field] of bad) {
      expect(() => validateTrailer(t as typeof ok, commit)).toThrow(expect.objectContaining({ code: 'ERR_LTX_TRAILER_INVALID', field }));
    }
  });
});
