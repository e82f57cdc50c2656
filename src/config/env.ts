import os from 'node:os';

/** The environment a config is expanded against (a plain lookup, never mutated). */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Returns a copy of `env` in which HOSTNAME is set to the OS hostname when
 * it is unset or empty, as LiteFS does before reading its config, so
 * `${HOSTNAME}` works under init systems that do not export it.
 */
export function withHostnameDefault(env: Env, hostname: string = os.hostname()): Env {
  if (env['HOSTNAME'] !== undefined && env['HOSTNAME'] !== '') return env;
  return { ...env, HOSTNAME: hostname };
}

const SINGLE_QUOTED = /^(\w+)\s*(==|!=)\s*'(.*)'$/;
const DOUBLE_QUOTED = /^(\w+)\s*(==|!=)\s*"(.*)"$/;
const TWO_VARS = /^(\w+)\s*(==|!=)\s*(\w+)$/;

/**
 * What one `$NAME` / `${...}` reference expands to. Besides plain names,
 * `${...}` may hold a comparison that yields "true" or "false":
 * `${VAR == 'lit'}`, `${VAR != "lit"}`, `${A == B}` (two variables).
 * Unset variables expand to "".
 */
export function evaluateReference(name: string, env: Env): string {
  const v = name.trim();
  const lookup = (k: string): string => env[k] ?? '';
  const quoted = SINGLE_QUOTED.exec(v) ?? DOUBLE_QUOTED.exec(v);
  if (quoted !== null) return String((lookup(quoted[1]!) === quoted[3]) === (quoted[2] === '=='));
  const vars = TWO_VARS.exec(v);
  if (vars !== null) return String((lookup(vars[1]!) === lookup(vars[3]!)) === (vars[2] === '=='));
  return lookup(v);
}

/**
 * Go's `os.Expand` scanning rules, so a file written for LiteFS expands the
 * same way: `$NAME` takes the longest run of [A-Za-z0-9_]; `$` followed by
 * one of `*#$@!?-` or a digit names that single character; `${...}` runs to
 * the first `}`; `${}` and an unclosed `${` are dropped; a `$` followed by
 * anything else is kept literally.
 */
export function expandEnv(text: string, env: Env): string {
  let out = '';
  let i = 0;
  for (let j = 0; j < text.length; j++) {
    if (text[j] !== '$' || j + 1 >= text.length) continue;
    out += text.slice(i, j);
    const [name, width] = shellName(text.slice(j + 1));
    if (name === '' && width > 0) {
      // invalid syntax: the characters are eaten
    } else if (name === '') {
      out += '$';
    } else {
      out += evaluateReference(name, env);
    }
    j += width;
    i = j + 1;
  }
  return i === 0 ? text : out + text.slice(i);
}

function isSpecial(c: string): boolean {
  return '*#$@!?-'.includes(c) || (c >= '0' && c <= '9');
}

function isAlnum(c: string): boolean {
  return c === '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

function shellName(s: string): [string, number] {
  if (s[0] === '{') {
    if (s.length > 2 && isSpecial(s[1]!) && s[2] === '}') return [s.slice(1, 2), 3];
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '}') return i === 1 ? ['', 2] : [s.slice(1, i), i + 1];
    }
    return ['', 1];
  }
  if (isSpecial(s[0]!)) return [s.slice(0, 1), 1];
  let i = 0;
  while (i < s.length && isAlnum(s[i]!)) i++;
  return [s.slice(0, i), i];
}
