import { createHash, timingSafeEqual } from 'node:crypto';

/** Why a request was refused; `reason` is what the 401 body and the log say. */
export interface Refusal {
  code: 'ERR_AUTH_TOKEN_MISSING' | 'ERR_AUTH_TOKEN_MALFORMED' | 'ERR_AUTH_TOKEN_WRONG' | 'ERR_AUTH_CLIENT_CERT';
  reason: string;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The node's shared secret, kept only as a SHA-256 digest. Presented tokens
 * are digested too, so the comparison is timingSafeEqual over two 32-byte
 * values whatever the token's length: neither the content nor the length of
 * the secret leaks through timing.
 */
export class TokenCheck {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  /** null when `authorization` (the header's value) carries the token. */
  refuse(authorization: string | undefined): Refusal | null {
    if (authorization === undefined || authorization === '') {
      return { code: 'ERR_AUTH_TOKEN_MISSING', reason: 'missing token: send "Authorization: Bearer <http.token>"' };
    }
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(authorization);
    if (m === null) return { code: 'ERR_AUTH_TOKEN_MALFORMED', reason: 'the Authorization header is not "Bearer <token>"' };
    if (!timingSafeEqual(digest(m[1]!), this.expected)) return { code: 'ERR_AUTH_TOKEN_WRONG', reason: 'wrong token' };
    return null;
  }
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}
