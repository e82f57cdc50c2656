import { formatPos, type Pos } from '../ltx/index.js';

/** `<db>-pos`: "%016x/%016x\n", 34 bytes. */
export function posFileContent(pos: Pos): Buffer {
  return Buffer.from(`${formatPos(pos)}\n`);
}

/** `.primary`: the primary's hostname and a newline. */
export function primaryFileContent(hostname: string): Buffer {
  return Buffer.from(`${hostname}\n`);
}

/** Lag reported before the first sync with a primary (LiteFS uses the int32 maximum). */
export const NOT_READY_LAG_MS = 2147483647;

/**
 * `.lag`: how far behind the primary this node is, in ms (the lease
 * monitor's ReplicaLag), as LiteFS prints it (`%+010d\n`): "+000000000\n"
 * on the primary. A node always has a number; null (LiteFS's
 * not-ready int32 maximum) remains for a status that has none. LiteFS
 * reports a fixed size of 11 for this file even when a value makes it
 * longer; we report the real length.
 */
export function lagFileContent(lagMs: number | null): Buffer {
  const ms = lagMs === null ? NOT_READY_LAG_MS : Math.max(0, Math.min(NOT_READY_LAG_MS, Math.round(lagMs)));
  return Buffer.from(`+${String(ms).padStart(9, '0')}\n`);
}
