import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';

function problems(text: string): Array<[string, string]> {
  try {
    parseConfig(text, 'r.yml', { env: {}, hostname: 'h' });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => [p.path, p.message]);
  }
  return [];
}

describe('cross-key rules (LiteFS §6–7)', () => {
  it('allows a database filter only on non-candidates', () => {
    const [[key, msg]] = problems('lease:\n  type: consul\n  consul: {url: "http://c", key: k}\n  databases: [db1]\n') as [
      [string, string],
    ];
    expect(key).toBe('lease.databases');
    expect(msg).toContain('lease.databases at line 4, column 14: a database filter is only allowed when lease.candidate is false');
    expect(problems('lease:\n  type: consul\n  consul: {url: "http://c", key: k}\n  candidate: false\n  databases: [db1]\n')).toEqual([]);
  });

  it('allows promote only on candidates, and only with consul or etcd', () => {
    expect(problems('lease:\n  type: consul\n  consul: {url: "http://c", key: k}\n  candidate: false\n  promote: true\n')).toEqual([
      [
        'lease.promote',
        'lease.promote at line 5, column 12: only allowed when lease.candidate is true (a non-candidate cannot become primary)',
      ],
    ]);
    expect(problems('lease:\n  type: static\n  promote: true\n')).toEqual([
      ['lease.promote', 'lease.promote at line 3, column 12: requires lease.type consul or etcd (static leases cannot be handed off)'],
    ]);
  });

  it('requires advertise-url on a static replica', () => {
    const p = problems('lease:\n  type: static\n  candidate: false\n');
    expect(p).toHaveLength(1);
    expect(p[0]![0]).toBe('lease.advertise-url');
    expect(p[0]![1]).toContain(
      "required on a static-lease replica (lease.candidate: false) (lease section at line 2); set it to the primary's API URL",
    );
  });

  it('rejects fuse.dir equal to, or inside, data.dir, and data.dir inside fuse.dir', () => {
    const lease = 'lease:\n  type: static\n';
    expect(problems(`${lease}data:\n  dir: /x\nfuse:\n  dir: /x/\n`)[0]![1]).toContain(
      'fuse.dir at line 6, column 8: "/x/" is the same directory as data.dir',
    );
    expect(problems(`${lease}data:\n  dir: /x\nfuse:\n  dir: /x/mnt\n`)[0]![1]).toContain('"/x/mnt" is inside data.dir "/x"');
    expect(problems(`${lease}data:\n  dir: /x/data\nfuse:\n  dir: /x\n`)[0]![1]).toContain(
      'data.dir at line 4, column 8: "/x/data" is inside fuse.dir "/x"',
    );
    expect(problems(`${lease}data:\n  dir: /x\nfuse:\n  dir: /xy\n`)).toEqual([]);
  });

  it('requires addr and db when the proxy has a target', () => {
    const p = problems('lease:\n  type: static\nproxy:\n  target: localhost:8081\n');
    expect(p.map(([k]) => k)).toEqual(['proxy.addr', 'proxy.db']);
    expect(p[0]![1]).toBe('proxy.addr is required when proxy.target is set (proxy section at line 4)');
  });

  it('rejects an advertise-url that is not a URL', () => {
    expect(problems('lease:\n  type: static\n  advertise-url: primary:20202\n')[0]![1]).toBe(
      'lease.advertise-url at line 3, column 18: "primary:20202" is not an http:// or https:// URL',
    );
  });

  it('rejects a zero retention monitor interval', () => {
    expect(problems('lease:\n  type: static\ndata:\n  retention-monitor-interval: 0s\n')[0]![0]).toBe('data.retention-monitor-interval');
  });
});

describe('lease.etcd', () => {
  const etcd = (body: string): string => `lease:\n  type: etcd\n  etcd:\n${body}`;

  it('accepts endpoints, key, a whole-second TTL and TLS files, and fills the defaults', () => {
    const cfg = parseConfig(
      etcd(
        '    endpoints: ["https://e1:2379", "https://e2:2379"]\n    key: litefs/primary\n    ttl: 2s\n    tls: { ca: /c/ca.pem, cert: /c/cl.pem, key: /c/cl-key.pem }\n',
      ),
      'e.yml',
      { env: {}, hostname: 'h' },
    );
    expect(cfg.lease.type).toBe('etcd');
    expect(cfg.lease.etcd).toEqual({
      endpoints: ['https://e1:2379', 'https://e2:2379'],
      key: 'litefs/primary',
      ttlMs: 2_000,
      tls: { ca: '/c/ca.pem', cert: '/c/cl.pem', key: '/c/cl-key.pem' },
    });
    const plain = parseConfig(etcd('    endpoints: ["http://e1:2379"]\n    key: k\n'), 'e.yml', { env: {}, hostname: 'h' });
    expect(plain.lease.etcd.ttlMs).toBe(10_000);
    expect(problems(etcd('    endpoints: ["http://e1:2379"]\n    key: k\n  promote: true\n'))).toEqual([]);
  });

  it('requires endpoints and key, naming the section', () => {
    expect(problems('lease:\n  type: etcd\n')).toEqual([
      [
        'lease.etcd.endpoints',
        'lease.etcd.endpoints is required when lease.type is etcd (lease section at line 2); a list of member client URLs, e.g. ["http://etcd1:2379", "http://etcd2:2379"]',
      ],
      ['lease.etcd.key', 'lease.etcd.key is required when lease.type is etcd (lease section at line 2); e.g. litefs/primary'],
    ]);
    expect(problems(etcd('    endpoints: []\n    key: ""\n')).map(([k]) => k)).toEqual(['lease.etcd.endpoints', 'lease.etcd.key']);
  });

  it('rejects endpoints that are not http(s)://host:port, a TTL etcd cannot grant, and half a client certificate', () => {
    expect(problems(etcd('    endpoints: ["e1:2379", "http://e2:2379/v3", "http://u:pw@e3:2379"]\n    key: k\n'))).toEqual([
      ['lease.etcd.endpoints', 'lease.etcd.endpoints at line 4, column 16: "e1:2379" must use http:// or https://'],
      [
        'lease.etcd.endpoints',
        'lease.etcd.endpoints at line 4, column 16: "http://e2:2379/v3" must be scheme://host:port only, without a path',
      ],
      [
        'lease.etcd.endpoints',
        'lease.etcd.endpoints at line 4, column 16: "http://u:REDACTED@e3:2379/" must not carry credentials (etcd authentication is not supported; use client certificates)',
      ],
    ]);
    for (const ttl of ['1s', '2500ms', '25h']) {
      const p = problems(etcd(`    endpoints: ["http://e:2379"]\n    key: k\n    ttl: ${ttl}\n`));
      expect(p, ttl).toHaveLength(1);
      expect(p[0]![0]).toBe('lease.etcd.ttl');
      expect(p[0]![1]).toMatch(/^lease\.etcd\.ttl at line 6, column 10: .* must be a whole number of seconds within 2s\.\.24h/);
    }
    expect(problems(etcd('    endpoints: ["https://e:2379"]\n    key: k\n    tls: { cert: /c.pem }\n'))).toEqual([
      [
        'lease.etcd.tls.key',
        'lease.etcd.tls.key is required with lease.etcd.tls.cert at line 6, column 18: a client certificate needs its key',
      ],
    ]);
    expect(problems(etcd('    endpoints: ["http://e:2379"]\n    key: k\n    tls:\n      ca: /ca.pem\n'))).toEqual([
      [
        'lease.etcd.tls',
        'lease.etcd.tls at line 7, column 7: only used for https:// endpoints, and every endpoint in lease.etcd.endpoints is http://',
      ],
    ]);
  });

  it('rejects unknown keys inside lease.etcd and lease.etcd.tls', () => {
    const p = problems(etcd('    endpoints: ["http://e:2379"]\n    key: k\n    lock-delay: 1s\n    tls: { cafile: x }\n'));
    expect(p.map(([k]) => k)).toEqual(['lease.etcd.lock-delay', 'lease.etcd.tls.cafile']);
    expect(p[0]![1]).toContain('allowed keys in lease.etcd: endpoints, key, ttl, tls');
    expect(p[1]![1]).toContain('allowed keys in lease.etcd.tls: ca, cert, key');
  });
});
