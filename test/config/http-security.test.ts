import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { parseByteSize } from '../../src/config/size.js';

const LEASE = 'lease:\n  type: static\n';

function parse(text: string, env: Record<string, string> = {}) {
  return parseConfig(text, 's.yml', { env, hostname: 'h' });
}

function problems(text: string, env: Record<string, string> = {}): Array<[string, string]> {
  try {
    parse(text, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => [p.path, p.message]);
  }
  return [];
}

describe('http.token, http.tls, http.max-import-size', () => {
  it('reads the token, TLS files and import cap; https becomes the default advertise-url', () => {
    const cfg = parse(
      `${LEASE}http:\n  addr: ":9000"\n  token: \${T}\n  tls:\n    cert: /c.pem\n    key: /k.pem\n    ca: /ca.pem\n    client-auth: true\n  max-import-size: 100MB\n`,
      { T: 's3cret-token' },
    );
    expect(cfg.http.token).toBe('s3cret-token');
    expect(cfg.http.tls).toEqual({ cert: '/c.pem', key: '/k.pem', ca: '/ca.pem', clientAuth: true });
    expect(cfg.http.maxImportSize).toBe(100_000_000);
    expect(cfg.lease.advertiseURL).toBe('https://h:9000');
  });

  it('refuses a token that expanded to nothing instead of running without one, and never shows a token', () => {
    expect(problems(`${LEASE}http:\n  token: \${LITEFS_TOKEN}\n`)).toEqual([
      [
        'http.token',
        'http.token at line 4, column 10: is empty (expanded from "${LITEFS_TOKEN}"); set it, or remove the key to run without one',
      ],
    ]);
    expect(problems(`${LEASE}http:\n  token: "\${LITEFS_TOKEN}"\n`)[0]![0]).toBe('http.token');
    const [[key, msg]] = problems(`${LEASE}http:\n  token: "has a space"\n`) as [[string, string]];
    expect(key).toBe('http.token');
    expect(msg).toContain('must be printable ASCII without spaces');
    expect(msg).not.toContain('has a space');
    expect(problems(`${LEASE}http:\n  token: [a]\n`)[0]![1]).not.toContain('"a"');
  });

  it('requires cert and key together, and a CA and a certificate for client-auth', () => {
    expect(problems(`${LEASE}http:\n  tls:\n    cert: /c.pem\n`).map(([k]) => k)).toEqual(['http.tls.key']);
    expect(problems(`${LEASE}http:\n  tls:\n    key: /k.pem\n`).map(([k]) => k)).toEqual(['http.tls.cert']);
    expect(problems(`${LEASE}http:\n  tls:\n    cert: /c.pem\n    key: /k.pem\n    client-auth: true\n`)).toEqual([
      [
        'http.tls.ca',
        "http.tls.ca is required with http.tls.client-auth at line 7, column 18 (the CA that signs the clients' certificates)",
      ],
    ]);
    expect(problems(`${LEASE}http:\n  tls:\n    ca: /ca.pem\n    client-auth: true\n`).map(([k]) => k)).toEqual(['http.tls.client-auth']);
    expect(problems(`${LEASE}http:\n  tls:\n    bogus: 1\n`)[0]![1]).toContain('allowed keys in http.tls: cert, key, ca, client-auth');
  });

  it("checks that a node's own advertise-url matches how it listens, but not a static replica's", () => {
    expect(problems(`${LEASE}  advertise-url: https://n:1\n`)[0]![1]).toContain('is https:// but this node serves cleartext');
    expect(problems(`${LEASE}  advertise-url: http://n:1\nhttp:\n  tls: {cert: /c, key: /k}\n`)[0]![1]).toContain(
      'is http:// but this node serves TLS',
    );
    expect(problems(`${LEASE}  candidate: false\n  advertise-url: https://p:1\nhttp:\n  tls: {ca: /ca}\n`)).toEqual([]);
    expect(problems(`${LEASE}  candidate: false\n  advertise-url: https://p:1\n`)).toEqual([]);
  });

  it('parses sizes with decimal and binary units', () => {
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('10kb')).toBe(10_000);
    expect(parseByteSize('10 parsecs')).toBeUndefined();
    expect(problems(`${LEASE}http:\n  max-import-size: 0\n`)[0]![1]).toContain('must be more than 0 bytes');
    expect(problems(`${LEASE}http:\n  max-import-size: lots\n`)[0]![1]).toContain('"lots" is not a size');
  });
});
