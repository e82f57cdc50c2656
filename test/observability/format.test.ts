import { describe, expect, it } from 'vitest';
import { encodeEvent, goTimeUTC, txEvent } from '../../src/http/event-format.js';
import { parseExposition, sampleValue } from './prom-text.js';

describe('event encoding', () => {
  it('prints timestamps as Go prints a UTC time.Time (RFC 3339, trailing zeros dropped)', () => {
    const base = Date.UTC(2023, 10, 14, 22, 13, 20);
    expect(goTimeUTC(base)).toBe('2023-11-14T22:13:20Z');
    expect(goTimeUTC(base + 100)).toBe('2023-11-14T22:13:20.1Z');
    expect(goTimeUTC(base + 120)).toBe('2023-11-14T22:13:20.12Z');
    expect(goTimeUTC(base + 123)).toBe('2023-11-14T22:13:20.123Z');
    expect(goTimeUTC(base + 5)).toBe('2023-11-14T22:13:20.005Z');
  });

  it('encodes a tx event as one line with LiteFS key order and %016x ids', () => {
    const line = encodeEvent(
      txEvent({
        kind: 'commit',
        db: 'app.db',
        pos: { txid: 0x2an, postApplyChecksum: 0x8123456789abcdefn },
        pageSize: 4096,
        commit: 7,
        timestamp: Date.UTC(2024, 0, 2, 3, 4, 5, 600),
        ltxPath: '/x',
      }),
    );
    expect(line).toBe(
      '{"type":"tx","db":"app.db","data":{"txID":"000000000000002a","postApplyChecksum":"8123456789abcdef","pageSize":4096,"commit":7,"timestamp":"2024-01-02T03:04:05.6Z"}}\n',
    );
  });

  it("escapes <, > and & the way Go's JSON encoder does", () => {
    const line = encodeEvent({ type: 'primaryChange', data: { isPrimary: false, hostname: 'a<b>&c\u2028' } });
    expect(line).toBe('{"type":"primaryChange","data":{"isPrimary":false,"hostname":"a\\u003cb\\u003e\\u0026c\\u2028"}}\n');
    expect(JSON.parse(line)).toEqual({ type: 'primaryChange', data: { isPrimary: false, hostname: 'a<b>&c\u2028' } });
  });
});

describe('exposition parser (test helper)', () => {
  it('reads types, escaped labels and values, and rejects garbage', () => {
    const fams = parseExposition(
      ['# HELP x_total Things.', '# TYPE x_total counter', 'x_total{db="a\\"b\\\\c\\n",type="ltx"} 3', '# TYPE g gauge', 'g 0.5', ''].join(
        '\n',
      ),
    );
    expect(fams.get('x_total')?.type).toBe('counter');
    expect(sampleValue(fams, 'x_total', { db: 'a"b\\c\n', type: 'ltx' })).toBe(3);
    expect(sampleValue(fams, 'g')).toBe(0.5);
    expect(() => parseExposition('g{db="a} 1\n')).toThrow(/unterminated/);
    expect(() => parseExposition('g one\n')).toThrow(/not a number/);
  });
});
