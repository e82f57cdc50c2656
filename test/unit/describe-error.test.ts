import { describe, expect, it } from 'vitest';
import { apiURL } from '../../src/cli/args.js';
import { CodedError, describeError } from '../../src/internal/index.js';

describe('describeError', () => {
  it('names the code once: Node system errors already carry it in their message', async () => {
    const enoent = await import('node:fs/promises').then((fs) => fs.readFile('/nonexistent/x').catch((e: unknown) => e));
    expect(describeError(enoent)).toBe("ENOENT: no such file or directory, open '/nonexistent/x'");
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(describeError(refused)).toBe('connect ECONNREFUSED 127.0.0.1:1');
  });

  it('adds the code to messages that lack it', () => {
    expect(describeError(new CodedError('ERR_X_BROKEN', 'it broke'))).toBe('ERR_X_BROKEN: it broke');
    expect(describeError(Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }))).toBe(
      'UND_ERR_CONNECT_TIMEOUT: Connect Timeout Error',
    );
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError('text')).toBe('text');
  });
});

describe('apiURL', () => {
  it('takes host:port as written in litefs.yml, and full URLs as they are', () => {
    expect(apiURL('127.0.0.1:20202')).toBe('http://127.0.0.1:20202');
    expect(apiURL('localhost:20202')).toBe('http://localhost:20202');
    expect(apiURL('http://node1:20202')).toBe('http://node1:20202');
    expect(apiURL('https://node1:20202')).toBe('https://node1:20202');
  });
});
