import { describe, expect, it } from 'vitest';
import { joinKey, parseConsulURL, redact } from '../../src/lease/consul-url.js';

describe('parseConsulURL (LiteFS lease.consul.url rules)', () => {
  it('takes scheme, host and port', () => {
    expect(parseConsulURL('http://127.0.0.1:8500')).toEqual({
      origin: 'http://127.0.0.1:8500',
      secure: false,
      host: '127.0.0.1',
      port: 8500,
      token: '',
      keyPrefix: '',
    });
  });

  it('defaults the port from the scheme like any URL', () => {
    expect(parseConsulURL('https://consul.example.com').port).toBe(443);
    expect(parseConsulURL('http://consul').port).toBe(80);
  });

  it('uses the password as ACL token (percent-decoded) and ignores the user', () => {
    const e = parseConsulURL('https://user:a%2Fb%40c@consul.example.com/');
    expect(e.token).toBe('a/b@c');
    expect(e.origin).toBe('https://consul.example.com:443');
  });

  it('turns the path into a key prefix', () => {
    expect(parseConsulURL('https://:t@c/my-cluster/').keyPrefix).toBe('my-cluster');
    expect(parseConsulURL('https://c/a//b/').keyPrefix).toBe('a/b');
    expect(parseConsulURL('https://c/').keyPrefix).toBe('');
  });

  it('rejects non-http URLs without echoing the token', () => {
    expect(() => parseConsulURL('consul:8500')).toThrow(/must use http/);
    try {
      parseConsulURL('ftp://:hunter2@c/');
    } catch (err) {
      expect(String(err)).not.toContain('hunter2');
      expect((err as { code: string }).code).toBe('ERR_LEASE_INVALID_OPTIONS');
    }
  });
});

describe('joinKey', () => {
  it('joins like Go path.Join and drops outer slashes', () => {
    expect(joinKey('', 'litefs/primary')).toBe('litefs/primary');
    expect(joinKey('pfx', '/litefs/primary/')).toBe('pfx/litefs/primary');
    expect(joinKey('pfx', 'litefs', 'clusterid')).toBe('pfx/litefs/clusterid');
    expect(joinKey('a/../b', 'k')).toBe('b/k');
  });
});

describe('redact', () => {
  it('hides the password of a URL', () => {
    expect(redact('https://u:secret@h/p')).toBe('https://u:REDACTED@h/p');
    expect(redact('http://h:8500')).toBe('http://h:8500');
  });
});
