import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';

/** Parses text that must fail; returns the error. */
function fail(text: string): ConfigError {
  try {
    parseConfig(text, 'bad.yml', { env: {}, hostname: 'h' });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('config unexpectedly parsed');
}

function only(text: string): ConfigProblem {
  const err = fail(text);
  expect(err.problems, err.message).toHaveLength(1);
  return err.problems[0]!;
}

const lease = 'lease:\n  type: static\n';

describe('unknown keys', () => {
  it('names the key path, its line and column, and the allowed keys of its section', () => {
    const p = only(`${lease}  consull:\n    url: x\n`);
    expect(p.kind).toBe('unknown-key');
    expect(p.path).toBe('lease.consull');
    expect(p.line).toBe(3);
    expect(p.column).toBe(3);
    expect(p.message).toBe(
      'unknown key lease.consull at line 3, column 3 (did you mean consul?); allowed keys in lease: ' +
        'type, hostname, advertise-url, candidate, promote, reconnect-delay, demote-delay, databases, consul, etcd',
    );
  });

  it('lists top-level keys for an unknown top-level key', () => {
    const p = only(`${lease}mount-dir: /x\n`);
    expect(p.message).toMatch(
      /^unknown key mount-dir at line 3, column 1; allowed top-level keys: exit-on-error, skip-sync, strict-verify, exec, data, fuse, http, proxy, lease, log$/,
    );
  });

  it('checks nested sections (lease.consul)', () => {
    const p = only(`${lease}  consul:\n    url: http://c:8500\n    ttl: 10s\n    session: x\n`);
    expect(p.path).toBe('lease.consul.session');
    expect(p.line).toBe(6);
    expect(p.message).toContain('allowed keys in lease.consul: url, key, ttl, lock-delay');
  });

  it('checks exec entries', () => {
    const p = only(`${lease}exec:\n  - cmd: a\n    if_candidate: true\n`);
    expect(p.path).toBe('exec[0].if_candidate');
    expect(p.message).toMatch(
      /^unknown key exec\[0\]\.if_candidate at line 5, column 5 \(did you mean if-candidate\?\); allowed keys in exec entries: cmd, if-candidate$/,
    );
  });
});

describe('bad values', () => {
  it('rejects a non-duration with an example of the syntax', () => {
    const p = only(`${lease}  reconnect-delay: 10x\n`);
    expect(p.kind).toBe('invalid-value');
    expect(p.message).toBe('lease.reconnect-delay at line 3, column 20: "10x" is not a duration (e.g. 10s, 1m30s)');
  });

  it('rejects a bare number as a duration and asks for a unit', () => {
    const p = only(`${lease}  consul:\n    ttl: 10\n`);
    expect(p.path).toBe('lease.consul.ttl');
    expect(p.message).toContain('lease.consul.ttl at line 4, column 10: 10 is not a duration (e.g. 10s, 1m30s); add a unit');
  });

  it('rejects negative durations', () => {
    expect(only(`data:\n  retention: -1m\n${lease}`).message).toBe(
      'data.retention at line 2, column 14: "-1m" is negative; durations must be 0 or more',
    );
  });

  it('rejects an unknown lease type and lists the allowed ones', () => {
    const p = only('lease:\n  type: zookeeper\n');
    expect(p.message).toBe('lease.type at line 2, column 9: "zookeeper" is not allowed; allowed values: static, consul, etcd');
  });

  it('rejects an unknown log format', () => {
    expect(only(`${lease}log:\n  format: xml\n`).message).toBe(
      'log.format at line 4, column 11: "xml" is not allowed; allowed values: text, json',
    );
  });

  it('rejects a bad listen address', () => {
    expect(only(`${lease}http:\n  addr: localhost\n`).message).toBe(
      'http.addr at line 4, column 9: "localhost" is not a listen address; expected [host]:port, e.g. :20202',
    );
  });

  it('rejects a consul URL that is not http(s) and never prints the token', () => {
    const p = only('lease:\n  type: consul\n  consul:\n    url: "ftp://:s3cret@c/x"\n    key: k\n');
    expect(p.path).toBe('lease.consul.url');
    expect(p.message).toContain('is not an http:// or https:// URL');
    expect(p.message).not.toContain('s3cret');
  });

  it('rejects a TTL above Consul maximum and a lock-delay above 60s', () => {
    const err = fail('lease:\n  type: consul\n  consul:\n    url: http://c\n    key: k\n    ttl: 25h\n    lock-delay: 61s\n');
    expect(err.problems.map((p) => p.path)).toEqual(['lease.consul.ttl', 'lease.consul.lock-delay']);
    expect(err.problems[0]!.message).toContain('25h0m0s is outside 1s..24h');
    expect(err.problems[1]!.message).toContain('1m1s is more than 60s');
  });

  it('rejects an empty required directory', () => {
    expect(only(`${lease}data:\n  dir: ""\n`).message).toBe('data.dir at line 4, column 8: must not be empty (default /var/lib/litefs)');
  });
});

describe('wrong types', () => {
  it('rejects a non-boolean for a bool key', () => {
    const p = only(`${lease}  candidate: maybe\n`);
    expect(p.kind).toBe('wrong-type');
    expect(p.message).toBe('lease.candidate at line 3, column 14: expected true or false, got "maybe"');
  });

  it('accepts YAML 1.1 booleans for bool keys as go-yaml does', () => {
    const cfg = parseConfig(`${lease}  candidate: yes\nfuse:\n  debug: on\n`, 't', { env: {} });
    expect(cfg.lease.candidate).toBe(true);
    expect(cfg.fuse.debug).toBe(true);
  });

  it('rejects a list where a section belongs', () => {
    expect(only(`${lease}data: [a, b]\n`).message).toBe(
      'data at line 3, column 7: expected a mapping of data settings (dir, compress, retention, retention-monitor-interval), got a list',
    );
  });

  it('rejects a mapping where a string belongs', () => {
    expect(only(`${lease}  hostname: {a: 1}\n`).message).toBe('lease.hostname at line 3, column 13: expected a string, got a mapping');
  });

  it('rejects a string where a list belongs', () => {
    expect(only('lease:\n  type: static\n  candidate: false\n  advertise-url: http://p:1\n  databases: db1\n').message).toBe(
      'lease.databases at line 5, column 14: expected a list of strings, got "db1"',
    );
  });

  it('rejects non-string list items with the item index', () => {
    const p = only(`${lease}proxy:\n  passthrough: ["/a", [x]]\n`);
    expect(p.path).toBe('proxy.passthrough[1]');
    expect(p.message).toBe('proxy.passthrough[1] at line 4, column 23: expected a non-empty string, got a list');
  });

  it('rejects malformed exec entries', () => {
    const err = fail(`${lease}exec:\n  - cmd: [a]\n  - if-candidate: true\n  - plain\n`);
    expect(err.problems.map((p) => p.path)).toEqual(['exec[0].cmd', 'exec[1].cmd', 'exec[2]']);
    expect(err.problems[1]!.message).toBe('exec[1].cmd at line 5, column 5: is required (the command to run)');
    expect(err.problems[2]!.message).toContain('expected a mapping with keys cmd, if-candidate, got "plain"');
  });

  it('rejects a file that is not a mapping', () => {
    expect(only('just text\n').message).toMatch(/^the config file at line 1, column 1: expected a mapping of top-level settings/);
  });
});

describe('missing required keys', () => {
  it('requires lease.type and lists the allowed values', () => {
    const p = only('fuse:\n  dir: /mnt/x\n');
    expect(p.kind).toBe('missing');
    expect(p.path).toBe('lease.type');
    expect(p.message).toBe('lease.type is required; allowed values: static, consul, etcd');
  });

  it('points at the lease section when it exists without a type', () => {
    const p = only('fuse:\n  dir: /mnt/x\nlease:\n  candidate: true\n');
    expect(p.message).toBe('lease.type is required (lease section at line 4); allowed values: static, consul, etcd');
    expect(p.line).toBe(4);
  });

  it('requires url and key for a consul lease', () => {
    const err = fail('lease:\n  type: consul\n');
    expect(err.problems.map((p) => [p.kind, p.path])).toEqual([
      ['missing', 'lease.consul.url'],
      ['missing', 'lease.consul.key'],
    ]);
    expect(err.problems[0]!.line).toBe(2);
  });
});

describe('unsupported sections', () => {
  it('rejects backup and tracing with the reason', () => {
    const err = fail(`${lease}backup:\n  type: litefs-cloud\ntracing:\n  enabled: false\n`);
    expect(err.problems.map((p) => [p.kind, p.path, p.line])).toEqual([
      ['unsupported', 'backup', 3],
      ['unsupported', 'tracing', 5],
    ]);
    expect(err.problems[0]!.message).toContain('not supported by litefs-ts (LiteFS Cloud was retired');
    expect(err.problems[1]!.message).toContain('not supported by litefs-ts');
  });

  it('accepts an empty backup key (nothing to run)', () => {
    expect(parseConfig(`${lease}backup:\n`, 't', { env: {} }).lease.type).toBe('static');
  });
});

describe('YAML syntax errors', () => {
  it('report line and column with code ERR_CONFIG_SYNTAX', () => {
    const err = fail('lease:\n  type: [static\n  candidate: true\n');
    expect(err.code).toBe('ERR_CONFIG_SYNTAX');
    expect(err.problems[0]!.kind).toBe('syntax');
    expect(err.problems[0]!.line).toBeGreaterThanOrEqual(2);
    expect(err.message).toMatch(/YAML syntax error at line \d+, column \d+: /);
  });

  it('report duplicate keys', () => {
    const err = fail('lease:\n  type: static\n  type: consul\n');
    expect(err.code).toBe('ERR_CONFIG_SYNTAX');
    expect(err.message).toContain('duplicate key at line 3, column 3');
  });
});

describe('reporting', () => {
  it('reports every problem, in file order, with code ERR_CONFIG_INVALID', () => {
    const err = fail(
      [
        'lease:',
        '  type: consul',
        '  consul:',
        '    url: http://c:8500',
        '    key: k',
        '    ttl: 10x',
        '  candidate: perhaps',
        'data:',
        '  dir: /data',
        'fuse:',
        '  dir: /data',
        'http:',
        '  adr: ":1"',
        '',
      ].join('\n'),
    );
    expect(err.code).toBe('ERR_CONFIG_INVALID');
    expect(err.source).toBe('bad.yml');
    expect(err.problems.map((p) => [p.path, p.line])).toEqual([
      ['lease.consul.ttl', 6],
      ['lease.candidate', 7],
      ['fuse.dir', 11],
      ['http.adr', 13],
    ]);
    expect(err.message).toMatch(/^invalid config bad\.yml: 4 problems:\n {2}- lease\.consul\.ttl at line 6/);
  });
});
