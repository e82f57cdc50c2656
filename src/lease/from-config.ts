import type { Config } from '../config/index.js';
import type { Logger } from '../internal/index.js';
import { ConsulLeaser, type ConsulLeaserOptions } from './consul.js';
import { StaticLeaser } from './static.js';
import type { Leaser } from './types.js';

export interface CreateLeaserOptions {
  logger?: Logger;
  /** Extra Consul client settings (timeouts, watch tuning) not present in litefs.yml. */
  consul?: Partial<Omit<ConsulLeaserOptions, 'url' | 'key' | 'hostname' | 'advertiseURL' | 'candidate' | 'ttlMs' | 'lockDelayMs'>>;
}

/** Builds the leaser that `config.lease` describes. */
export function createLeaser(config: Config, opts: CreateLeaserOptions = {}): Leaser {
  const lease = config.lease;
  if (lease.type === 'static') {
    return new StaticLeaser({ candidate: lease.candidate, hostname: lease.hostname, advertiseURL: lease.advertiseURL });
  }
  return new ConsulLeaser({
    ...opts.consul,
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    url: lease.consul.url,
    key: lease.consul.key,
    hostname: lease.hostname,
    advertiseURL: lease.advertiseURL,
    candidate: lease.candidate,
    ttlMs: lease.consul.ttlMs,
    lockDelayMs: lease.consul.lockDelayMs,
  });
}
