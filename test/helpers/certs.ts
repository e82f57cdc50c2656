import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/*
 * Real X.509 material for TLS tests, made with the openssl CLI at test
 * time (EC P-256: fast to generate). Two CAs; node certificates carry the
 * SANs a loopback cluster dials (IP 127.0.0.1 and localhost) and are good
 * for both server and client authentication.
 */

export interface CertPair {
  cert: string;
  key: string;
}

export interface TestPKI {
  dir: string;
  /** The cluster's CA. */
  ca: string;
  /** Signed by `ca`, for 127.0.0.1 and localhost. */
  node: CertPair;
  /** Another certificate from `ca`, same names: what a rotation installs. */
  rotated: CertPair;
  /** From `ca`, right names, expired yesterday. */
  expired: CertPair;
  /** Right names, signed by another CA. */
  otherCA: CertPair;
  /** The other CA's certificate. */
  otherCACert: string;
  /** From `ca`, but only for wrong.example. */
  wrongHost: CertPair;
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCA(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  return { cert, key };
}

function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }, sans: string, days: number): CertPair {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    `/CN=${name}`,
  ]);
  // -days -1 ends the validity a day before now: an expired certificate.
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    String(days),
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** Writes a fresh PKI into `dir` (which must exist). */
export function makeTestPKI(dir: string): TestPKI {
  const ca = makeCA(dir, 'ca');
  const other = makeCA(dir, 'other-ca');
  const local = 'IP:127.0.0.1,DNS:localhost';
  return {
    dir,
    ca: ca.cert,
    node: makeLeaf(dir, 'node', ca, local, 2),
    rotated: makeLeaf(dir, 'rotated', ca, local, 2),
    expired: makeLeaf(dir, 'expired', ca, local, -1),
    otherCA: makeLeaf(dir, 'other', other, local, 2),
    otherCACert: other.cert,
    wrongHost: makeLeaf(dir, 'wrong-host', ca, 'DNS:wrong.example', 2),
  };
}
