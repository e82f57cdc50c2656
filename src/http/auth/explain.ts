import { describeError } from '../../internal/index.js';

/** The chain of causes of an error, outermost first (undici wraps socket errors). */
function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err, i = 0; e !== undefined && e !== null && i < 5; i++) {
    out.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

function codeOf(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * One line saying why a connection to another node's API failed, in the
 * operator's terms (which certificate, which setting), for TLS and
 * authentication failures; other errors are described as they are.
 */
export function explainConnectError(err: unknown, url: string, otherwise: (err: unknown) => string = describeError): string {
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    /* keep the text as given */
  }
  for (const e of chain(err)) {
    const code = codeOf(e);
    const msg = messageOf(e);
    if (code === 'CERT_HAS_EXPIRED') return `the certificate of ${host} has expired (${code})`;
    if (code === 'CERT_NOT_YET_VALID') return `the certificate of ${host} is not valid yet (${code})`;
    if (UNTRUSTED.has(code)) return `the certificate of ${host} is not signed by a trusted CA (http.tls.ca, -ca) (${code})`;
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      const names = (e as { cert?: { subjectaltname?: unknown } }).cert?.subjectaltname;
      return `the certificate of ${host} is for another host${typeof names === 'string' ? ` (it names ${names})` : ''} (${code})`;
    }
    if (/alert certificate required/i.test(msg)) return `${host} requires a client certificate (http.tls.cert and key, -cert/-key)`;
    if (/alert unknown ca/i.test(msg)) return `${host} does not trust this client's certificate (signed by a CA it does not know)`;
    if (/alert certificate expired/i.test(msg)) return `${host} refused this client's certificate: it has expired`;
    if (/alert (bad certificate|certificate unknown|unsupported certificate)/i.test(msg))
      return `${host} refused this client's certificate`;
    if (/wrong version number|packet length too long|unexpected eof while reading/i.test(msg)) {
      return `${host} does not speak TLS; use an http:// URL for a cleartext node (${code || msg})`;
    }
    if (/before secure TLS connection was established/i.test(msg)) {
      return `${host} closed the connection during the TLS handshake: it serves cleartext (use http://) or refused this client`;
    }
    if (code === 'ERR_HTTP2_SESSION_ERROR' && /code 12\b/.test(msg)) return `${host} requires TLS; use an https:// URL`;
  }
  return otherwise(err);
}
