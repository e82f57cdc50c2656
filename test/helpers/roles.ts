import type { ClusterNode } from './cluster.js';

/*
 * When each node accepted writes, from its own log: a term starts at
 * "this node is now the primary" (logged right after the store turned
 * writeable) and ends at "this node no longer accepts writes" (logged
 * right after it turned read-only), or when the test killed the process.
 * All nodes run on this machine, so their log times share one clock.
 */

export interface Term {
  node: string;
  from: number;
  /** Infinity: still primary. */
  to: number;
  /** Why it ended, as logged ('fenced: ...', 'stepping down', 'handing the lease off'); 'killed' or 'running'. */
  reason: string;
}

function timeOf(line: Record<string, unknown>): number {
  const t = line['time'];
  return typeof t === 'string' ? Date.parse(t) : typeof t === 'number' ? t : NaN;
}

/** Every primary term of `node`; `killedAt` lists when the test SIGKILLed it (Date.now()). */
export function primaryTerms(node: ClusterNode, killedAt: readonly number[] = []): Term[] {
  const terms: Term[] = [];
  let open: number | null = null;
  const close = (to: number, reason: string): void => {
    if (open !== null) terms.push({ node: node.name, from: open, to, reason });
    open = null;
  };
  const killed = (from: number): [number, string] => {
    const k = killedAt.find((t) => t >= from);
    return k === undefined ? [Infinity, 'running'] : [k, 'killed'];
  };
  for (const line of node.node.logLines(true)) {
    const msg = line['msg'];
    if (msg === 'this node is now the primary') {
      // A run that was killed as primary leaves its term open.
      if (open !== null) close(...killed(open));
      open = timeOf(line);
    } else if (msg === 'this node no longer accepts writes') {
      close(timeOf(line), String(line['reason'] ?? ''));
    }
  }
  if (open !== null) close(...killed(open));
  return terms;
}

/** Pairs of terms of different nodes that overlap in time (should be none). */
export function overlappingTerms(terms: readonly Term[]): string[] {
  const out: string[] = [];
  const sorted = [...terms].sort((a, b) => a.from - b.from);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i]!;
      const b = sorted[j]!;
      if (a.node !== b.node && b.from < a.to) {
        out.push(`${a.node} [${iso(a.from)} .. ${iso(a.to)}] overlaps ${b.node} [${iso(b.from)} .. ${iso(b.to)}]`);
      }
    }
  }
  return out;
}

function iso(t: number): string {
  return Number.isFinite(t) ? new Date(t).toISOString() : 'now';
}
