import { LeaseError } from './errors.js';

/**
 * Checks lease.etcd.endpoints: each must be an http:// or https:// URL of
 * an etcd member's client port with nothing after the host and port (the
 * v3 gateway paths are added per call). Returns the origins, in order.
 */
export function parseEtcdEndpoints(list: readonly string[]): string[] {
  if (list.length === 0)
    throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', 'etcd leaser: at least one endpoint is required (lease.etcd.endpoints)');
  const out: string[] = [];
  for (const text of list) {
    let u: URL;
    try {
      u = new URL(text);
    } catch (err) {
      throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `etcd endpoint ${JSON.stringify(text)} is not a URL`, { cause: err });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `etcd endpoint ${JSON.stringify(text)} must use http:// or https://`);
    }
    if (u.hostname === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `etcd endpoint ${JSON.stringify(text)} has no host`);
    if (u.username !== '' || u.password !== '' || (u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') {
      throw new LeaseError(
        'ERR_LEASE_INVALID_OPTIONS',
        `etcd endpoint ${JSON.stringify(text)} must be scheme://host:port only (no credentials, path or query)`,
      );
    }
    if (!out.includes(u.origin)) out.push(u.origin);
  }
  return out;
}
