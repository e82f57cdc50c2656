import { Agent, buildConnector } from 'undici';
import type { NodeSecurity } from './security.js';

/**
 * An undici dispatcher for another node's API: TLS settings are read per
 * connection (a reload applies to the next connection), and requests get
 * nothing else special; callers add `security.headers()`.
 */
export function nodeAgent(security: NodeSecurity, connectTimeoutMs = 10_000): Agent {
  return new Agent({
    connect: (options, callback) => buildConnector({ ...security.clientOptions(), timeout: connectTimeoutMs })(options, callback),
  });
}
