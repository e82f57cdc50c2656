import { ProxyError } from './errors.js';

/**
 * Compiles a proxy.passthrough / proxy.always-forward pattern: `*` matches
 * any run of characters (including `/`), everything else is literal, and
 * the whole path must match (LiteFS anchors them as ^…$).
 */
export function compilePathPattern(pattern: string, field: string): RegExp {
  if (typeof pattern !== 'string' || pattern === '') {
    throw new ProxyError(
      'ERR_PROXY_INVALID_CONFIG',
      `${field}: ${JSON.stringify(pattern)} is not a path pattern; expected e.g. "/static/*"`,
    );
  }
  const body = pattern
    .split('*')
    .map((lit) => lit.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

/** A list of compiled patterns; an empty list matches nothing. */
export class PathMatcher {
  private readonly res: RegExp[];

  constructor(patterns: readonly string[], field: string) {
    this.res = patterns.map((p, i) => compilePathPattern(p, `${field}[${i}]`));
  }

  get empty(): boolean {
    return this.res.length === 0;
  }

  matches(path: string): boolean {
    for (const re of this.res) if (re.test(path)) return true;
    return false;
  }
}

/**
 * The path a request's patterns are matched against, as Go's URL.Path: the
 * request-target without its query, percent-decoded. Absolute-form targets
 * (`http://host/path`) are reduced to their path. Undecodable escapes are
 * matched as written.
 */
export function requestPath(target: string): string {
  let path: string;
  if (target.startsWith('/')) {
    const q = target.indexOf('?');
    path = q < 0 ? target : target.slice(0, q);
  } else {
    try {
      path = new URL(target).pathname;
    } catch {
      return target;
    }
  }
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * The origin-form target (`/path?query`) to send upstream, or null when the
 * request-target cannot be forwarded (`*`, authority-form).
 */
export function originForm(target: string): string | null {
  if (target.startsWith('/')) return target;
  if (!/^https?:\/\//i.test(target)) return null;
  try {
    const u = new URL(target);
    return `${u.pathname}${u.search}`;
  } catch {
    return null;
  }
}
