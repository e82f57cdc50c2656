import { formatChecksum, formatTXID } from '../ltx/index.js';
import type { DBChange } from '../store/index.js';

/** `data` of init and primaryChange events. */
export interface RoleEventData {
  isPrimary: boolean;
  /** The primary's hostname ("" while no primary is known). */
  hostname: string;
}

export interface TxEventData {
  /** `%016x` */
  txID: string;
  /** `%016x` */
  postApplyChecksum: string;
  pageSize: number;
  /** Database size in pages after the transaction (0: the database was deleted). */
  commit: number;
  /** The LTX file's timestamp, RFC 3339 in UTC as Go prints a time.Time. */
  timestamp: string;
}

export type LiteFSEvent =
  { type: 'init'; data: RoleEventData } | { type: 'tx'; db: string; data: TxEventData } | { type: 'primaryChange'; data: RoleEventData };

export function txEvent(change: DBChange): LiteFSEvent {
  // Keys in LiteFS's order: type, db, data.
  return {
    type: 'tx',
    db: change.db,
    data: {
      txID: formatTXID(change.pos.txid),
      postApplyChecksum: formatChecksum(change.pos.postApplyChecksum),
      pageSize: change.pageSize,
      commit: change.commit,
      timestamp: goTimeUTC(change.timestamp),
    },
  };
}

/** One line of the `/events` stream. */
export function encodeEvent(event: LiteFSEvent): string {
  return `${escapeLikeGo(JSON.stringify(event))}\n`;
}

/**
 * A millisecond timestamp as Go's JSON encoding of a UTC time.Time prints
 * it (RFC 3339 with nanoseconds): trailing zeros of the fraction are
 * dropped, and the fraction entirely when it is zero.
 */
export function goTimeUTC(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2006-01-02T15:04:05.000Z
  const dot = iso.lastIndexOf('.');
  const frac = iso.slice(dot + 1, -1).replace(/0+$/, '');
  return `${iso.slice(0, dot)}${frac === '' ? '' : `.${frac}`}Z`;
}

/**
 * Go's json.Encoder escapes <, >, & and the JavaScript line separators;
 * doing the same keeps the stream byte-identical to LiteFS's for the same
 * names. These characters only occur inside strings, so a global replace
 * cannot touch the JSON structure.
 */
function escapeLikeGo(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
