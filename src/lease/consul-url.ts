import path from 'node:path';
import { LeaseError } from './errors.js';

export interface ConsulEndpoint {
  /** scheme://host:port with no credentials and no path, safe to log. */
  origin: string;
  secure: boolean;
  /** Host as URL syntax writes it (IPv6 in brackets). */
  host: string;
  port: number;
  /** The ACL token: the URL's password, percent-decoded ('' when absent). */
  token: string;
  /** The URL path without leading/trailing slashes: a prefix for every key. */
  keyPrefix: string;
}

/**
 * Reads lease.consul.url as LiteFS does: the scheme and host pick the
 * agent, the password is the ACL token (`https://:TOKEN@host/prefix`), the
 * path is a key prefix. The username is ignored. A missing port is the
 * scheme's default (80/443), as for any URL; note that the npm `consul`
 * package alone would have defaulted to 8500.
 */
export function parseConsulURL(text: string): ConsulEndpoint {
  let u: URL;
  try {
    u = new URL(text);
  } catch (err) {
    throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `consul URL ${JSON.stringify(redact(text))} is not a URL`, { cause: err });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `consul URL ${JSON.stringify(redact(text))} must use http:// or https://`);
  }
  if (u.hostname === '') throw new LeaseError('ERR_LEASE_INVALID_OPTIONS', `consul URL ${JSON.stringify(redact(text))} has no host`);
  const secure = u.protocol === 'https:';
  const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port);
  const prefix = normalizeKey(decodeURIComponent(u.pathname));
  return {
    origin: `${u.protocol}//${u.hostname}:${port}`,
    secure,
    host: u.hostname,
    port,
    token: decodeURIComponent(u.password),
    keyPrefix: prefix,
  };
}

/**
 * Joins key parts like Go's path.Join and drops leading and trailing
 * slashes: Consul keys are relative ("litefs/primary"), and a leading
 * slash would put "//" into the /v1/kv/ request path.
 */
export function joinKey(...parts: string[]): string {
  return normalizeKey(parts.filter((p) => p !== '').join('/'));
}

function normalizeKey(p: string): string {
  if (p === '' || p === '/') return '';
  const clean = path.posix.normalize(p);
  return clean.replace(/^\/+/, '').replace(/\/+$/, '').replace(/^\.$/, '');
}

/** The URL with its password replaced, for messages. */
export function redact(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@]*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:REDACTED@`;
  });
}
