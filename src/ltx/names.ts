/**
 * String and JSON forms of TXIDs, checksums, positions and LTX file names,
 * as ltx v0.3.14 writes and parses them: fixed 16-digit hex. Parsing accepts
 * upper- or lowercase hex (Go's strconv.ParseUint does); file names must be
 * lowercase (Go's regexp).
 */
import { LtxError, hex64 } from './errors.js';

/** A database position: the last applied TXID and the checksum after it. */
export interface Pos {
  txid: bigint;
  postApplyChecksum: bigint;
}

/** JSON shape of a Pos, as Go marshals ltx.Pos (no JSON tags). */
export interface PosJSON {
  TXID: string | null;
  PostApplyChecksum: string | null;
}

const HEX16 = /^[0-9a-fA-F]{16}$/;
const LTX_FILENAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

export function formatTXID(txid: bigint): string {
  return hex64(txid);
}

function parseHex16(s: string, what: string): bigint {
  if (typeof s !== 'string' || s.length !== 16) {
    throw new LtxError('ERR_LTX_PARSE', `invalid formatted ${what} length: ${JSON.stringify(s)}`, {
      field: what,
      value: String(s),
    });
  }
  if (!HEX16.test(s)) {
    throw new LtxError('ERR_LTX_PARSE', `invalid ${what} format: ${JSON.stringify(s)}`, { field: what, value: s });
  }
  return BigInt(`0x${s}`);
}

/** Exactly 16 hex digits, either case. */
export function parseTXID(s: string): bigint {
  return parseHex16(s, 'transaction id');
}

export function formatChecksum(c: bigint): string {
  return hex64(c);
}

export function parseChecksum(s: string): bigint {
  return parseHex16(s, 'checksum');
}

/** `%016x-%016x.ltx` */
export function ltxFilename(minTXID: bigint, maxTXID: bigint): string {
  return `${hex64(minTXID)}-${hex64(maxTXID)}.ltx`;
}

/** Min and max TXID from an LTX file name, or null if it is not one. */
export function parseLtxFilename(name: string): { minTXID: bigint; maxTXID: bigint } | null {
  const m = LTX_FILENAME.exec(name);
  if (m === null) return null;
  return { minTXID: BigInt(`0x${m[1]!}`), maxTXID: BigInt(`0x${m[2]!}`) };
}

/** `%016x/%016x` (33 characters). */
export function formatPos(p: Pos): string {
  return `${hex64(p.txid)}/${hex64(p.postApplyChecksum)}`;
}

export function parsePos(s: string): Pos {
  if (typeof s !== 'string' || s.length !== 33) {
    throw new LtxError('ERR_LTX_PARSE', `invalid formatted position length: ${JSON.stringify(s)}`, {
      field: 'pos',
      value: String(s),
    });
  }
  if (s[16] !== '/') {
    throw new LtxError('ERR_LTX_PARSE', `invalid position format: ${JSON.stringify(s)}`, { field: 'pos', value: s });
  }
  return { txid: parseTXID(s.slice(0, 16)), postApplyChecksum: parseChecksum(s.slice(17)) };
}

export function isZeroPos(p: Pos): boolean {
  return p.txid === 0n && p.postApplyChecksum === 0n;
}

/** JSON value of a TXID: a 16-hex string. */
export function txidToJSON(txid: bigint): string {
  return hex64(txid);
}

/** Accepts a 16-hex string; null means 0 (as in Go). */
export function txidFromJSON(v: unknown): bigint {
  if (v === null) return 0n;
  if (typeof v !== 'string') {
    throw new LtxError('ERR_LTX_PARSE', `cannot unmarshal TXID from JSON value ${JSON.stringify(v)}`, { field: 'TXID' });
  }
  return parseTXID(v);
}

export function checksumToJSON(c: bigint): string {
  return hex64(c);
}

export function checksumFromJSON(v: unknown): bigint {
  if (v === null) return 0n;
  if (typeof v !== 'string') {
    throw new LtxError('ERR_LTX_PARSE', `cannot unmarshal checksum from JSON value ${JSON.stringify(v)}`, {
      field: 'checksum',
    });
  }
  return parseChecksum(v);
}

export function posToJSON(p: Pos): PosJSON {
  return { TXID: hex64(p.txid), PostApplyChecksum: hex64(p.postApplyChecksum) };
}

export function posFromJSON(v: unknown): Pos {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new LtxError('ERR_LTX_PARSE', `cannot unmarshal position from JSON value ${JSON.stringify(v)}`, {
      field: 'pos',
    });
  }
  const o = v as Record<string, unknown>;
  return {
    txid: o.TXID === undefined ? 0n : txidFromJSON(o.TXID),
    postApplyChecksum: o.PostApplyChecksum === undefined ? 0n : checksumFromJSON(o.PostApplyChecksum),
  };
}
