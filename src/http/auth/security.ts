import type tls from 'node:tls';
import { AuthError } from './errors.js';
import { loadMaterial, type Material, type SecuritySettings } from './material.js';
import { bearer, type Refusal } from './token.js';

const CLIENT_CERT_PROBLEMS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is not signed by the CA this node trusts (http.tls.ca)',
  UNABLE_TO_GET_ISSUER_CERT: 'it is not signed by the CA this node trusts (http.tls.ca)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is not signed by the CA this node trusts (http.tls.ca)',
  SELF_SIGNED_CERT_IN_CHAIN: 'it is not signed by the CA this node trusts (http.tls.ca)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
};

/**
 * Who this node trusts and how it proves itself: the shared token and the
 * TLS material of litefs.yml's http section, for both sides of every
 * node-to-node call (the API server, the replica's stream, /promote's
 * handoff request, the proxy, the CLI). reload() swaps in freshly read
 * material: the server applies it to new handshakes, and clients read it
 * per connection, so open connections finish with what they started with.
 */
export class NodeSecurity {
  private material: Material;
  private readonly listeners = new Set<() => void>();

  private constructor(material: Material) {
    this.material = material;
  }

  static async load(settings: SecuritySettings): Promise<NodeSecurity> {
    return new NodeSecurity(await loadMaterial(settings));
  }

  /** No token, no TLS: LiteFS's cleartext API. */
  static none(): NodeSecurity {
    return new NodeSecurity({ token: '', check: null, clientAuth: false, summary: { token: 'none' } });
  }

  /** Fixed for the node's life: TLS on or off is decided at startup. */
  get servesTLS(): boolean {
    return this.material.cert !== undefined;
  }

  get requiresToken(): boolean {
    return this.material.check !== null;
  }

  get summary(): Record<string, unknown> {
    return this.material.summary;
  }

  /** null when the request may proceed; otherwise why it is refused. */
  refuse(authorization: string | undefined): Refusal | null {
    return this.material.check?.refuse(authorization) ?? null;
  }

  get clientAuth(): boolean {
    return this.material.clientAuth;
  }

  /**
   * Options for the TLS listener (only meaningful when servesTLS). Client
   * certificates are requested but judged per request (clientCertRefusal):
   * a handshake refused by TLS 1.3 reaches the client as a reset
   * connection at its first request, while an HTTP answer says why.
   */
  serverOptions(): tls.TlsOptions {
    const m = this.material;
    return { ...this.secureContextOptions(), requestCert: m.clientAuth, rejectUnauthorized: false };
  }

  /** With client-auth, why the peer of `socket` may not use the API; null when it may. */
  clientCertRefusal(socket: tls.TLSSocket | undefined): Refusal | null {
    if (!this.material.clientAuth) return null;
    if (socket === undefined || typeof socket.getPeerCertificate !== 'function') {
      return { code: 'ERR_AUTH_CLIENT_CERT', reason: 'a client certificate is required (mutual TLS)' };
    }
    if (socket.authorized) return null;
    const peer = socket.getPeerCertificate();
    if (peer === null || Object.keys(peer).length === 0) {
      return { code: 'ERR_AUTH_CLIENT_CERT', reason: 'a client certificate is required (mutual TLS): send one signed by the cluster CA' };
    }
    const code = String(socket.authorizationError ?? 'not trusted');
    const why = CLIENT_CERT_PROBLEMS[code] ?? 'not trusted';
    return { code: 'ERR_AUTH_CLIENT_CERT', reason: `client certificate refused: ${why} (${code})` };
  }

  /** Certificate, key and CA for tls.Server.setSecureContext. */
  secureContextOptions(): tls.SecureContextOptions {
    const m = this.material;
    return {
      ...(m.cert !== undefined ? { cert: m.cert } : {}),
      ...(m.key !== undefined ? { key: m.key } : {}),
      ...(m.ca !== undefined ? { ca: m.ca } : {}),
    };
  }

  /**
   * TLS options for dialling another node: its certificate is verified
   * against the CA (the system's when none is set), hostname included, and
   * this node's certificate is presented for mutual TLS. A new object each
   * call, so each connection gets a context built from current material.
   */
  clientOptions(): tls.ConnectionOptions {
    const m = this.material;
    return {
      ...(m.ca !== undefined ? { ca: m.ca } : {}),
      ...(m.cert !== undefined && m.key !== undefined ? { cert: m.cert, key: m.key } : {}),
      rejectUnauthorized: true,
    };
  }

  /** Headers every request to another node carries. */
  headers(): Record<string, string> {
    return this.material.token === '' ? {} : { authorization: bearer(this.material.token) };
  }

  /**
   * Re-reads token and files. Throws (keeping the current material) when
   * a file is bad, or when the change needs a restart.
   */
  async reload(settings: SecuritySettings): Promise<void> {
    const next = await loadMaterial(settings);
    if ((next.cert !== undefined) !== this.servesTLS) {
      throw new AuthError('ERR_AUTH_RELOAD', 'turning TLS on or off (http.tls.cert) needs a restart; kept the current settings');
    }
    if (next.clientAuth !== this.material.clientAuth) {
      throw new AuthError('ERR_AUTH_RELOAD', 'changing http.tls.client-auth needs a restart; kept the current settings');
    }
    this.material = next;
    for (const fn of this.listeners) fn();
  }

  /** Calls `fn` after every successful reload; returns the unsubscribe. */
  onReload(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
