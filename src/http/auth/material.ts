import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import type { HttpConfig } from '../../config/index.js';
import { describeError } from '../../internal/index.js';
import { AuthError } from './errors.js';
import { TokenCheck } from './token.js';

/** The keys of litefs.yml's http section that say who may talk to whom. */
export type SecuritySettings = Pick<HttpConfig, 'token' | 'tls'>;

/** What the files held at one (re)load; never changed afterwards. */
export interface Material {
  token: string;
  check: TokenCheck | null;
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
  clientAuth: boolean;
  /** For the log: what was loaded, never the token or the key. */
  summary: Record<string, unknown>;
}

async function readPEM(setting: string, path: string): Promise<Buffer | undefined> {
  if (path === '') return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    throw new AuthError('ERR_AUTH_TLS_FILES', `http.tls.${setting}: cannot read ${path}: ${describeError(err)}`, { cause: err });
  }
}

function certificate(setting: string, path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new AuthError('ERR_AUTH_TLS_FILES', `http.tls.${setting}: ${path} holds no PEM certificate: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/**
 * Reads and checks everything before anything uses it, so a bad file
 * stops startup (or is refused by a reload, which keeps the old material)
 * with a message naming the setting and the file, not a handshake failure
 * on the first connection.
 */
export async function loadMaterial(s: SecuritySettings): Promise<Material> {
  const t = s.tls;
  const [cert, key, ca] = await Promise.all([readPEM('cert', t?.cert ?? ''), readPEM('key', t?.key ?? ''), readPEM('ca', t?.ca ?? '')]);
  const summary: Record<string, unknown> = { token: s.token === '' ? 'none' : 'set' };
  if (cert !== undefined && key !== undefined) {
    const x = certificate('cert', t!.cert, cert);
    try {
      tls.createSecureContext({ cert, key });
    } catch (err) {
      throw new AuthError(
        'ERR_AUTH_TLS_FILES',
        `http.tls.key: ${t!.key} is not the private key of the certificate in ${t!.cert}: ${describeError(err)}`,
        { cause: err },
      );
    }
    summary['cert'] = { subject: x.subject.replace(/\n/g, ', '), validTo: x.validTo, fingerprint256: x.fingerprint256 };
    summary['certExpired'] = Date.parse(x.validTo) < Date.now();
  }
  if (ca !== undefined) {
    certificate('ca', t!.ca, ca);
    summary['ca'] = t!.ca;
  }
  summary['clientAuth'] = t?.clientAuth ?? false;
  return {
    token: s.token,
    check: s.token === '' ? null : new TokenCheck(s.token),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(ca !== undefined ? { ca } : {}),
    clientAuth: t?.clientAuth ?? false,
    summary,
  };
}
