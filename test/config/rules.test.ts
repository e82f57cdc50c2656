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

  it('allows promote only on candidates, and only with consul', () => {
    expect(problems('lease:\n  type: consul\n  consul: {url: "http://c", key: k}\n  candidate: false\n  promote: true\n')).toEqual([
      [
        'lease.promote',
        'lease.promote at line 5, column 12: only allowed when lease.candidate is true (a non-candidate cannot become primary)',
      ],
    ]);
    expect(problems('lease:\n  type: static\n  promote: true\n')).toEqual([
      ['lease.promote', 'lease.promote at line 3, column 12: requires lease.type consul (static leases cannot be handed off)'],
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
