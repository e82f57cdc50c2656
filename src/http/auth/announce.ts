import type { HttpConfig } from '../../config/index.js';
import type { Logger } from '../../internal/index.js';
import type { NodeSecurity } from './security.js';

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Startup log lines about who may use the API: what was loaded (never the
 * token or key), and warnings an operator should not miss: a node anyone
 * on the network may drive, a certificate already expired.
 */
export function announceSecurity(log: Logger, http: HttpConfig, security: NodeSecurity): void {
  log.info({ ...security.summary, tls: security.servesTLS }, 'http: access control');
  if (!security.requiresToken && !isLoopbackHost(http.host)) {
    log.warn(
      { addr: http.addr },
      'http: the node API listens beyond loopback without http.token: anyone who can reach it can import, promote and read every database',
    );
  }
  if (security.summary['certExpired'] === true) log.warn('http: the certificate in http.tls.cert has expired; peers will refuse it');
}
