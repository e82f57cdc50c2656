import { loadConfig, type HttpTLSConfig } from '../config/index.js';
import { explainConnectError, nodeAgent, NodeSecurity } from '../http/index.js';
import type { Dispatcher } from 'undici';

/** Flags of every command that calls a node's API (parseArgs options). */
export const NODE_CLIENT_OPTIONS = {
  token: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  config: { type: 'string' },
} as const;

export const NODE_CLIENT_USAGE = `  -token TOKEN     the node's http.token (default: $LITEFS_TOKEN, else -config's)
  -ca PATH         CA certificate an https:// node's certificate must be signed by
  -cert PATH       client certificate for mutual TLS (with -key)
  -key PATH        its private key
  -config PATH     a litefs.yml to take http.token and http.tls from
`;

export interface NodeClientFlags {
  token?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  config?: string | undefined;
}

/** How a CLI command talks to a node: TLS settings per connection, the token on every request. */
export interface NodeClient {
  security: NodeSecurity;
  dispatcher: Dispatcher;
  headers: Record<string, string>;
  /** A one-line reason for a failed call to `url`. */
  explain(err: unknown, url: string): string;
  close(): Promise<void>;
}

/**
 * Token: -token, else $LITEFS_TOKEN, else the config file's http.token.
 * TLS: -ca/-cert/-key, each falling back to the config file's http.tls.
 * Throws (a usage problem) when -cert and -key do not come as a pair.
 */
export async function nodeClient(flags: NodeClientFlags, env: NodeJS.ProcessEnv = process.env): Promise<NodeClient> {
  const file = flags.config === undefined ? null : await loadConfig(flags.config);
  const token =
    flags.token ??
    (env['LITEFS_TOKEN'] !== undefined && env['LITEFS_TOKEN'] !== '' ? env['LITEFS_TOKEN'] : undefined) ??
    file?.http.token ??
    '';
  const fromFile = file?.http.tls ?? null;
  const cert = flags.cert ?? fromFile?.cert ?? '';
  const key = flags.key ?? fromFile?.key ?? '';
  if ((cert === '') !== (key === '')) throw new Error('-cert and -key go together (a client certificate and its key)');
  const ca = flags.ca ?? fromFile?.ca ?? '';
  const tls: HttpTLSConfig | null = cert === '' && ca === '' ? null : { cert, key, ca, clientAuth: false };
  const security = await NodeSecurity.load({ token, tls });
  const dispatcher = nodeAgent(security);
  return {
    security,
    dispatcher,
    headers: security.headers(),
    explain: (err, url) => explainConnectError(err, url, plainReason),
    close: () => dispatcher.close(),
  };
}

/** A thrown value on one line, without Node's doubled "ECONNREFUSED: connect ECONNREFUSED …". */
function plainReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/** The reason of a refusal: a 401's JSON `error`, else the body's text on one line. */
export function refusalText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    /* plain text */
  }
  const t = body.trim().replace(/\s*\n\s*/g, ' ');
  return t === '' ? '(no reason given)' : t;
}
