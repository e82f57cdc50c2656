import { describe, expect, it } from 'vitest';
import { evaluateReference, expandEnv, withHostnameDefault } from '../../src/config/env.js';
import { parseConfig } from '../../src/config/load.js';

const env = { A: 'lit', B: 'lit', C: 'fs', EMPTY: '', HOSTNAME: 'node1' };

describe('expandEnv (Go os.Expand rules plus LiteFS comparisons)', () => {
  it.each([
    ['$A', 'lit'],
    ['${A}', 'lit'],
    ['x${A}y', 'xlity'],
    ['$A-$C', 'lit-fs'],
    ['$UNSET', ''],
    ['${UNSET}', ''],
    ["${A == 'lit'}", 'true'],
    ["${A == 'fs'}", 'false'],
    ["${ A != 'fs' }", 'true'],
    ['${A == "lit"}', 'true'],
    ['${A != "lit"}', 'false'],
    ['${A == B}', 'true'],
    ['${A == C}', 'false'],
    ['${A != C}', 'true'],
    ['${UNSET == EMPTY}', 'true'],
    ["${UNSET == ''}", 'true'],
    ['price: 5$', 'price: 5$'], // trailing $ is literal
    ['a $ b', 'a $ b'], // $ before a non-name is literal
    ['${}x', 'x'], // bad syntax is eaten, as in Go
    ['${A', 'A'], // unclosed ${ eats "${"
    ['$$', ''], // $$ names the variable "$"
    ['$1x', 'x'], // $1 is a one-character special name
  ])('%j -> %j', (input, out) => {
    expect(expandEnv(input, env)).toBe(out);
  });

  it('evaluates a comparison with a quoted literal containing spaces and operators', () => {
    expect(evaluateReference("A == 'l == it'", { A: 'l == it' })).toBe('true');
  });

  it('defaults HOSTNAME without mutating the given env', () => {
    const given = { X: '1' };
    const out = withHostnameDefault(given, 'machine-7');
    expect(out['HOSTNAME']).toBe('machine-7');
    expect(given).not.toHaveProperty('HOSTNAME');
    expect(withHostnameDefault({ HOSTNAME: 'set' }, 'machine-7')['HOSTNAME']).toBe('set');
    expect(withHostnameDefault({ HOSTNAME: '' }, 'machine-7')['HOSTNAME']).toBe('machine-7');
  });
});

describe('env expansion in litefs.yml', () => {
  const base = 'lease:\n  type: static\n';

  it('expands $VAR and ${VAR} in values', () => {
    const cfg = parseConfig(`${base}  hostname: $H\n  advertise-url: "http://\${H}:20202"\n`, 't.yml', {
      env: { H: 'n1' },
      hostname: 'os-host',
    });
    expect(cfg.lease.hostname).toBe('n1');
    expect(cfg.lease.advertiseURL).toBe('http://n1:20202');
  });

  it('turns == and != into booleans for bool keys', () => {
    const yml = `${base}  candidate: \${FLY_REGION == PRIMARY_REGION}\n  advertise-url: http://p:1\nfuse:\n  debug: \${MODE != 'prod'}\n`;
    const same = parseConfig(yml, 't.yml', { env: { FLY_REGION: 'ord', PRIMARY_REGION: 'ord', MODE: 'prod' } });
    expect(same.lease.candidate).toBe(true);
    expect(same.fuse.debug).toBe(false);
    const differ = parseConfig(yml, 't.yml', { env: { FLY_REGION: 'ams', PRIMARY_REGION: 'ord', MODE: 'dev' } });
    expect(differ.lease.candidate).toBe(false);
    expect(differ.fuse.debug).toBe(true);
  });

  it('treats an unquoted value that expands to nothing as unset (default applies)', () => {
    const cfg = parseConfig(`${base}  hostname: $UNSET\n`, 't.yml', { env: {}, hostname: 'os-host' });
    expect(cfg.lease.hostname).toBe('os-host');
  });

  it('uses the OS hostname for ${HOSTNAME} when the environment lacks it', () => {
    const cfg = parseConfig(`${base}  hostname: "\${HOSTNAME}-x"\n`, 't.yml', { env: {}, hostname: 'box' });
    expect(cfg.lease.hostname).toBe('box-x');
  });

  it('cannot inject keys: a value with YAML structure stays one string', () => {
    const evil = 'x\n  candidate: false\n  promote: true';
    const cfg = parseConfig(`${base}  hostname: $EVIL\n`, 't.yml', { env: { EVIL: evil } });
    expect(cfg.lease.hostname).toBe(evil);
    expect(cfg.lease.candidate).toBe(true);
    expect(cfg.lease.promote).toBe(false);
  });

  it('does not expand comments or keys', () => {
    const cfg = parseConfig(`# $BAD\n${base}  hostname: plain # \${BAD}\n`, 't.yml', { env: { BAD: ': {' } });
    expect(cfg.lease.hostname).toBe('plain');
  });

  it('keeps values literal when expansion is turned off', () => {
    const cfg = parseConfig(`${base}  hostname: "$H"\n`, 't.yml', { env: { H: 'n1' }, expandEnv: false });
    expect(cfg.lease.hostname).toBe('$H');
  });

  it('expands list items, exec commands and durations', () => {
    const yml = `${base}  candidate: false\n  advertise-url: http://p:1\n  databases: [$DB, "\${DB}-2"]\nexec:\n  - cmd: "run $APP"\n    if-candidate: \${ROLE == 'primary'}\ndata:\n  retention: \${RET}\n`;
    const cfg = parseConfig(yml, 't.yml', { env: { DB: 'app.db', APP: 'srv', ROLE: 'primary', RET: '90s' } });
    expect(cfg.lease.databases).toEqual(['app.db', 'app.db-2']);
    expect(cfg.exec).toEqual([{ cmd: 'run srv', ifCandidate: true }]);
    expect(cfg.data.retentionMs).toBe(90_000);
  });

  it('names the expanded text when it is invalid', () => {
    expect(() => parseConfig(`${base}  reconnect-delay: $D\n`, 't.yml', { env: { D: '10x' } })).toThrow(
      /lease\.reconnect-delay at line 3, column 20: "10x" \(expanded from "\$D"\) is not a duration/,
    );
  });
});
