import type { InitIn } from '../protocol/decode.js';
import type { InitOut } from '../protocol/encode.js';
import { type Capability, INIT_EXT_BIT, capabilitiesOf, flagsOf, isRequestable } from '../protocol/capabilities.js';

/**
 * The protocol minor this library speaks: 7.38, the version of the
 * linux/fuse.h it was written against. Everything it relies on (flags2 /
 * FUSE_INIT_EXT from 7.36, FUSE_EXPIRE_ONLY and total_extlen from 7.38,
 * max_pages from 7.28, FUSE_EXPLICIT_INVAL_DATA from 7.30) is in that
 * version; replying 7.38 to a newer kernel keeps it from sending later
 * opcodes and layouts (STATX, passthrough, resend) we do not decode.
 */
export const PROTOCOL_MAJOR = 7;
export const PROTOCOL_MINOR = 38;
/** Oldest kernel minor accepted: 7.31 (Linux 5.8) has every flag and struct size used here. */
export const MIN_KERNEL_MINOR = 31;

const PAGE_SIZE = 4096;
/** FUSE_MAX_MAX_PAGES, the kernel's default max_pages_limit: 256 pages = 1 MiB. */
export const MAX_PAGES_LIMIT = 256;
export const MAX_WRITE_LIMIT = MAX_PAGES_LIMIT * PAGE_SIZE;
/** Without FUSE_MAX_PAGES the kernel uses 32 pages per request. */
const DEFAULT_MAX_PAGES = 32;

/** The kernel refuses a read of /dev/fuse into less than header + fuse_write_in + max_write; one page covers the first two. */
export function readBufferSize(maxWrite: number): number {
  return maxWrite + PAGE_SIZE;
}

/** What the filesystem's init hook sees. */
export interface InitInfo {
  kernelMajor: number;
  kernelMinor: number;
  /** The minor the session will reply with. */
  protocolMinor: number;
  kernelCapabilities: ReadonlySet<Capability>;
  /** What the session proposes to request (before intersecting with the kernel's offer). */
  requested: ReadonlySet<Capability>;
  maxWrite: number;
  maxReadahead: number;
}

/** What the filesystem's init hook may change. Limits can only be lowered. */
export interface InitAdjust {
  enable?: readonly Capability[];
  disable?: readonly Capability[];
  maxWrite?: number;
  maxReadahead?: number;
  /** Kernel default (0 here) is 12 background requests. */
  maxBackground?: number;
  congestionThreshold?: number;
}

/** The outcome of INIT, as used for the rest of the session. */
export interface Negotiated {
  major: number;
  minor: number;
  kernelMajor: number;
  kernelMinor: number;
  /** Granted: requested ∩ offered by the kernel. */
  capabilities: ReadonlySet<Capability>;
  kernelCapabilities: ReadonlySet<Capability>;
  /** Raw granted flags (flags | flags2 << 32) as sent in the reply. */
  flags: bigint;
  kernelFlags: bigint;
  maxWrite: number;
  maxPages: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
}

export interface NegotiationLimits {
  maxWrite: number;
  maxReadahead?: number;
  maxBackground?: number;
  congestionThreshold?: number;
}

export function applyAdjust(requested: Set<Capability>, limits: NegotiationLimits, adj: InitAdjust | void): NegotiationLimits {
  const out = { ...limits };
  if (!adj) return out;
  for (const c of adj.enable ?? []) requested.add(c);
  for (const c of adj.disable ?? []) requested.delete(c);
  if (adj.maxWrite !== undefined) out.maxWrite = Math.min(out.maxWrite, adj.maxWrite);
  if (adj.maxReadahead !== undefined) out.maxReadahead = adj.maxReadahead;
  if (adj.maxBackground !== undefined) out.maxBackground = adj.maxBackground;
  if (adj.congestionThreshold !== undefined) out.congestionThreshold = adj.congestionThreshold;
  return out;
}

/**
 * Computes the INIT reply: granted = requested ∩ offered (the kernel ignores
 * bits it did not offer, but intersecting keeps `negotiated` truthful), plus
 * FUSE_INIT_EXT when the kernel sent it so flags2 is read at all.
 */
export function negotiate(
  kernel: InitIn,
  requested: ReadonlySet<Capability>,
  limits: NegotiationLimits,
): { out: InitOut; negotiated: Negotiated } {
  const kernelCaps = capabilitiesOf(kernel.flags);
  const wanted = new Set<Capability>();
  for (const c of requested) if (isRequestable(c)) wanted.add(c);
  // Both at once would be contradictory; the explicit mode is the safer one.
  if (wanted.has('explicitInvalData')) wanted.delete('autoInvalData');
  let flags = flagsOf(wanted) & kernel.flags;
  const initExt = 1n << BigInt(INIT_EXT_BIT);
  if (kernel.flags & initExt) flags |= initExt;
  else flags &= 0xffff_ffffn;
  const granted = capabilitiesOf(flags);

  const maxPagesGranted = granted.has('maxPages');
  const pageCap = maxPagesGranted ? MAX_PAGES_LIMIT : DEFAULT_MAX_PAGES;
  const maxWrite = Math.max(PAGE_SIZE, Math.min(Math.floor(limits.maxWrite), pageCap * PAGE_SIZE));
  const maxPages = maxPagesGranted ? Math.ceil(maxWrite / PAGE_SIZE) : DEFAULT_MAX_PAGES;
  const maxReadahead = Math.min(kernel.maxReadahead, limits.maxReadahead ?? kernel.maxReadahead);
  const maxBackground = clampU16(limits.maxBackground ?? 0);
  const congestionThreshold = clampU16(limits.congestionThreshold ?? 0);
  const out: InitOut = {
    major: PROTOCOL_MAJOR,
    minor: Math.min(PROTOCOL_MINOR, kernel.minor),
    maxReadahead,
    flags,
    maxBackground,
    congestionThreshold,
    maxWrite,
    timeGran: 1,
    maxPages: maxPagesGranted ? maxPages : 0,
  };
  return {
    out,
    negotiated: {
      major: out.major,
      minor: out.minor,
      kernelMajor: kernel.major,
      kernelMinor: kernel.minor,
      capabilities: granted,
      kernelCapabilities: kernelCaps,
      flags,
      kernelFlags: kernel.flags,
      maxWrite,
      maxPages,
      maxReadahead,
      maxBackground,
      congestionThreshold,
      timeGran: 1,
    },
  };
}

function clampU16(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.floor(n)));
}
