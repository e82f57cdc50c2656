import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.js';
import { describeError, type Logger } from '../internal/index.js';
import { ConsulLeaser, type ConsulLeaserOptions } from './consul.js';
import type { EtcdTLS } from './etcd-client.js';
import { EtcdLeaser, type EtcdLeaserOptions } from './etcd.js';
import { LeaseError } from './errors.js';
import { StaticLeaser } from './static.js';
import type { Leaser } from './types.js';

export interface CreateLeaserOptions {
  logger?: Logger;
  /** Extra Consul client settings (timeouts, watch tuning) not present in litefs.yml. */
  consul?: Partial<Omit<ConsulLeaserOptions, 'url' | 'key' | 'hostname' | 'advertiseURL' | 'candidate' | 'ttlMs' | 'lockDelayMs'>>;
  /** Extra etcd client settings not present in litefs.yml. */
  etcd?: Partial<Omit<EtcdLeaserOptions, 'endpoints' | 'key' | 'hostname' | 'advertiseURL' | 'candidate' | 'ttlMs' | 'tls'>>;
}

/** Builds the leaser that `config.lease` describes. */
export function createLeaser(config: Config, opts: CreateLeaserOptions = {}): Leaser {
  const lease = config.lease;
  const logger = opts.logger !== undefined ? { logger: opts.logger } : {};
  if (lease.type === 'static') {
    return new StaticLeaser({ candidate: lease.candidate, hostname: lease.hostname, advertiseURL: lease.advertiseURL });
  }
  if (lease.type === 'etcd') {
    return new EtcdLeaser({
      ...opts.etcd,
      ...logger,
      endpoints: lease.etcd.endpoints,
      key: lease.etcd.key,
      hostname: lease.hostname,
      advertiseURL: lease.advertiseURL,
      candidate: lease.candidate,
      ttlMs: lease.etcd.ttlMs,
      tls: readTLS(lease.etcd.tls),
    });
  }
  return new ConsulLeaser({
    ...opts.consul,
    ...logger,
    url: lease.consul.url,
    key: lease.consul.key,
    hostname: lease.hostname,
    advertiseURL: lease.advertiseURL,
    candidate: lease.candidate,
    ttlMs: lease.consul.ttlMs,
    lockDelayMs: lease.consul.lockDelayMs,
  });
}

/** Loads the PEM files named in lease.etcd.tls (startup only, never on the mount). */
function readTLS(paths: { ca: string; cert: string; key: string }): EtcdTLS {
  const read = (name: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const file = paths[name];
    if (file === '') return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new LeaseError(
        'ERR_LEASE_INVALID_OPTIONS',
        `cannot read lease.etcd.tls.${name} ${JSON.stringify(file)}: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }
  };
  const tls: EtcdTLS = {};
  const ca = read('ca');
  const cert = read('cert');
  const key = read('key');
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  return tls;
}
