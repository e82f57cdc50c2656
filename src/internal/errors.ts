/**
 * Base class for every error litefs-ts throws on purpose. The `code` is a
 * stable, greppable identifier (ERR_<AREA>_<WHAT>) so operators and callers
 * can branch on it without parsing messages, the way undici's errors work.
 */
export class CodedError<Code extends string = string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True when `err` is a CodedError (of any module) with one of the given codes. */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof CodedError && codes.includes(err.code);
}

/** True when `err` is a Node system error with the given errno code (ENOENT, ...). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/**
 * A one-line description of any thrown value, for logs and CLI output: the
 * code, then the message. Node's system errors already name their code in
 * the message ("ENOENT: no such file…", "connect ECONNREFUSED …"), so the
 * code is added only when the message does not carry it.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || code === '' || err.message.includes(code)) return err.message;
  return `${code}: ${err.message}`;
}
