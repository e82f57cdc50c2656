import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { configSearchPaths, findConfigFile, loadConfig, parseConfig } from '../../src/config/load.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('defaults', () => {
  it('fills every key with LiteFS v0.5 defaults', () => {
    const cfg = parseConfig('lease:\n  type: consul\n  consul:\n    url: http://127.0.0.1:8500\n    key: litefs/primary\n', 'd.yml', {
      env: {},
      hostname: 'node-a',
    });
    expect(cfg).toEqual({
      source: 'd.yml',
      exitOnError: true,
      skipSync: false,
      strictVerify: false,
      exec: [],
      data: { dir: '/var/lib/litefs', compress: true, retentionMs: 600_000, retentionMonitorIntervalMs: 60_000 },
      fuse: { dir: '/litefs', allowOther: false, debug: false },
      http: { addr: ':20202', host: '', port: 20202, snapshotTimeoutMs: 600_000, token: '', tls: null, maxImportSize: null },
      proxy: {
        enabled: false,
        addr: '',
        target: '',
        db: '',
        debug: false,
        passthrough: [],
        alwaysForward: [],
        maxLagMs: 10_000,
        primaryRedirectTimeoutMs: 5_000,
        readTimeoutMs: 0,
        readHeaderTimeoutMs: 10_000,
        writeTimeoutMs: 0,
        idleTimeoutMs: 30_000,
      },
      lease: {
        type: 'consul',
        hostname: 'node-a',
        advertiseURL: 'http://node-a:20202',
        candidate: true,
        promote: false,
        reconnectDelayMs: 5_000,
        demoteDelayMs: 10_000,
        databases: [],
        consul: { url: 'http://127.0.0.1:8500', key: 'litefs/primary', ttlMs: 10_000, lockDelayMs: 1_000 },
        etcd: { endpoints: [], key: '', ttlMs: 10_000, tls: { ca: '', cert: '', key: '' } },
      },
      log: { format: 'text', timestamp: false, debug: false, level: 'info' },
    });
  });

  it('derives snapshot-timeout from retention and advertise-url from http.addr', () => {
    const cfg = parseConfig('lease:\n  type: static\ndata:\n  retention: 90s\nhttp:\n  addr: "127.0.0.1:3000"\n', 'd', {
      env: {},
      hostname: 'n',
    });
    expect(cfg.http.snapshotTimeoutMs).toBe(90_000);
    expect(cfg.http).toMatchObject({ host: '127.0.0.1', port: 3000 });
    expect(cfg.lease.advertiseURL).toBe('http://n:3000');
  });

  it('names a static replica after its primary by default', () => {
    const cfg = parseConfig('lease:\n  type: static\n  candidate: false\n  advertise-url: http://primary-1:20202\n', 'd', {
      env: {},
      hostname: 'me',
    });
    expect(cfg.lease.hostname).toBe('primary-1');
    expect(cfg.lease.advertiseURL).toBe('http://primary-1:20202');
  });

  it('takes exec as one string or a list', () => {
    expect(parseConfig('lease: {type: static}\nexec: "app serve"\n', 'd', { env: {} }).exec).toEqual([
      { cmd: 'app serve', ifCandidate: false },
    ]);
    expect(parseConfig('lease: {type: static}\nexec:\n  - cmd: m\n    if-candidate: true\n  - cmd: s\n', 'd', { env: {} }).exec).toEqual([
      { cmd: 'm', ifCandidate: true },
      { cmd: 's', ifCandidate: false },
    ]);
  });

  it('sets log.level from log.debug unless given', () => {
    expect(parseConfig('lease: {type: static}\nlog: {debug: true}\n', 'd', { env: {} }).log).toMatchObject({ level: 'debug', debug: true });
    expect(parseConfig('lease: {type: static}\nlog: {level: warn, format: json}\n', 'd', { env: {} }).log).toMatchObject({
      level: 'warn',
      debug: false,
      format: 'json',
    });
  });

  it('keeps defaults for keys written with no value', () => {
    const cfg = parseConfig('lease:\n  type: static\ndata:\n  dir:\n  retention: ~\n', 'd', { env: {} });
    expect(cfg.data.dir).toBe('/var/lib/litefs');
    expect(cfg.data.retentionMs).toBe(600_000);
  });
});

describe('litefs.yml.example', () => {
  it('loads with loadConfig and sets every section', async () => {
    const cfg = await loadConfig(path.join(repoRoot, 'litefs.yml.example'), {
      env: { LITEFS_TOKEN: 'example-token' },
      hostname: 'example-host',
    });
    expect(cfg.http).toMatchObject({
      token: 'example-token',
      tls: { cert: '/etc/litefs/node.pem', key: '/etc/litefs/node-key.pem', ca: '/etc/litefs/ca.pem', clientAuth: true },
      maxImportSize: 10 * 2 ** 30,
    });
    expect(cfg.lease).toMatchObject({
      type: 'consul',
      hostname: 'example-host',
      advertiseURL: 'https://example-host:20202',
      candidate: true,
      consul: { url: 'http://localhost:8500', key: 'litefs/primary', ttlMs: 10_000, lockDelayMs: 1_000 },
      etcd: {
        endpoints: ['https://etcd1:2379', 'https://etcd2:2379', 'https://etcd3:2379'],
        key: 'litefs/primary',
        ttlMs: 10_000,
        tls: { ca: '/etc/litefs/etcd-ca.pem', cert: '/etc/litefs/etcd-client.pem', key: '/etc/litefs/etcd-client-key.pem' },
      },
    });
    expect(cfg.exec).toEqual([
      { cmd: 'myapp migrate', ifCandidate: true },
      { cmd: 'myapp serve', ifCandidate: false },
    ]);
    expect(cfg.proxy).toMatchObject({
      enabled: true,
      addr: ':8080',
      target: 'localhost:8081',
      db: 'db',
      passthrough: ['/static/*', '*.png'],
    });
  });

  it('evaluates its candidate expression from the environment', async () => {
    const file = path.join(repoRoot, 'litefs.yml.example');
    const replica = await loadConfig(file, { env: { FLY_REGION: 'ams', PRIMARY_REGION: 'ord', HOSTNAME: 'r1', LITEFS_TOKEN: 't' } });
    expect(replica.lease.candidate).toBe(false);
    expect(replica.lease.hostname).toBe('r1');
  });
});

describe('loadConfig and findConfigFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'litefs-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('searches ./litefs.yml, then ~/litefs.yml, then /etc/litefs.yml', async () => {
    const cwd = path.join(dir, 'cwd');
    const home = path.join(dir, 'home');
    await mkdir(cwd);
    await mkdir(home);
    expect(configSearchPaths({ cwd, home })).toEqual([path.join(cwd, 'litefs.yml'), path.join(home, 'litefs.yml'), '/etc/litefs.yml']);
    await writeFile(path.join(home, 'litefs.yml'), 'lease: {type: static}\n');
    expect(await findConfigFile({ cwd, home })).toBe(path.join(home, 'litefs.yml'));
    await writeFile(path.join(cwd, 'litefs.yml'), 'lease: {type: consul, consul: {url: "http://c", key: k}}\n');
    expect(await findConfigFile({ cwd, home })).toBe(path.join(cwd, 'litefs.yml'));
    const cfg = await loadConfig(undefined, { cwd, home, env: {} });
    expect(cfg.lease.type).toBe('consul');
    expect(cfg.source).toBe(path.join(cwd, 'litefs.yml'));
  });

  it('fails with ERR_CONFIG_NOT_FOUND for a missing explicit path', async () => {
    const missing = path.join(dir, 'nope.yml');
    await expect(loadConfig(missing)).rejects.toMatchObject({ code: 'ERR_CONFIG_NOT_FOUND', message: `config file not found: ${missing}` });
  });

  it('fails with ERR_CONFIG_READ when the path is a directory', async () => {
    const err = await loadConfig(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_CONFIG_READ');
  });

  it('names the file in validation errors', async () => {
    const file = path.join(dir, 'litefs.yml');
    await writeFile(file, 'lease:\n  type: nope\n');
    await expect(loadConfig(file)).rejects.toThrow(`invalid config ${file}: lease.type at line 2, column 9`);
  });
});
