import type { Logger } from '../../internal/index.js';
import { FuseMountError } from '../errors.js';
import type { FuseFilesystem } from '../filesystem.js';
import { type Capability, capabilitiesOf } from '../protocol/capabilities.js';
import type { InitIn } from '../protocol/decode.js';
import type { InitOut } from '../protocol/encode.js';
import {
  MIN_KERNEL_MINOR,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type InitInfo,
  type Negotiated,
  type NegotiationLimits,
  applyAdjust,
  negotiate,
} from './negotiate.js';

/** Capabilities requested unless options or the filesystem say otherwise. */
// noOpendirSupport only takes effect for filesystems without an opendir
// handler (the dispatcher then answers ENOSYS), so it costs others nothing.
const DEFAULT_CAPABILITIES: readonly Capability[] = [
  'asyncRead',
  'bigWrites',
  'maxPages',
  'explicitInvalData',
  'parallelDirops',
  'noOpendirSupport',
];

export interface InitSettings {
  capabilities?: Partial<Record<Capability, boolean>>;
  limits: NegotiationLimits;
  logger: Logger;
}

/** What to send back for one INIT request. */
export type InitAnswer =
  /** The kernel speaks a newer major: answer with ours and expect another INIT. */
  { kind: 'retry'; out: InitOut } | { kind: 'ok'; out: InitOut; negotiated: Negotiated };

/**
 * Decides the INIT reply: default capabilities (locks only when the
 * filesystem can answer them, READDIRPLUS only when it implements it), then
 * the caller's overrides, then the filesystem's init hook, then the
 * intersection with what the kernel offers. Throws ERR_FUSE_INIT_FAILED for
 * kernels too old to talk to (or whatever the init hook throws).
 */
export async function answerInit(fs: FuseFilesystem, init: InitIn, settings: InitSettings): Promise<InitAnswer> {
  if (init.major > PROTOCOL_MAJOR) {
    return {
      kind: 'retry',
      out: {
        major: PROTOCOL_MAJOR,
        minor: PROTOCOL_MINOR,
        maxReadahead: 0,
        flags: 0n,
        maxBackground: 0,
        congestionThreshold: 0,
        maxWrite: 0,
        timeGran: 0,
        maxPages: 0,
      },
    };
  }
  if (init.major < PROTOCOL_MAJOR || init.minor < MIN_KERNEL_MINOR) {
    throw new FuseMountError(
      'ERR_FUSE_INIT_FAILED',
      `fuse: kernel protocol ${init.major}.${init.minor} is older than the 7.${MIN_KERNEL_MINOR} this library needs`,
    );
  }
  const requested = new Set<Capability>(DEFAULT_CAPABILITIES);
  if (fs.getlk || fs.setlk) requested.add('posixLocks');
  if (fs.readdirplus) {
    requested.add('readdirplus');
    requested.add('readdirplusAuto');
  }
  for (const [name, on] of Object.entries(settings.capabilities ?? {})) {
    if (on) requested.add(name as Capability);
    else requested.delete(name as Capability);
  }
  let limits = settings.limits;
  if (fs.init) {
    const info: InitInfo = {
      kernelMajor: init.major,
      kernelMinor: init.minor,
      protocolMinor: Math.min(PROTOCOL_MINOR, init.minor),
      kernelCapabilities: capabilitiesOf(init.flags),
      requested: new Set(requested),
      maxWrite: limits.maxWrite,
      maxReadahead: Math.min(init.maxReadahead, limits.maxReadahead ?? init.maxReadahead),
    };
    limits = applyAdjust(requested, limits, await fs.init(info));
  }
  // Drop capabilities whose requests nobody would answer.
  if (!fs.readdirplus) {
    requested.delete('readdirplus');
    requested.delete('readdirplusAuto');
  }
  if (!fs.setlk) {
    if (requested.has('posixLocks') || requested.has('flockLocks'))
      settings.logger.warn('fuse: lock capabilities dropped: the filesystem has no setlk');
    requested.delete('posixLocks');
    requested.delete('flockLocks');
  }
  return { kind: 'ok', ...negotiate(init, requested, limits) };
}
