import path from 'node:path';
import { parseHostPort } from './addr.js';
import { formatGoDuration } from './duration.js';
import { at, type ConfigProblem } from './errors.js';
import type { Position, RawConfig, RawEntry } from './read-yaml.js';
import { LEASE_TYPES } from './schema.js';
import type { Config, EtcdConfig, ExecEntry, HttpTLSConfig, LeaseType, LogFormat, LogLevelName } from './types.js';

export const DEFAULTS = {
  dataDir: '/var/lib/litefs',
  fuseDir: '/litefs',
  httpAddr: ':20202',
  retentionMs: 10 * 60_000,
  retentionMonitorIntervalMs: 60_000,
  proxyMaxLagMs: 10_000,
  proxyPrimaryRedirectTimeoutMs: 5_000,
  proxyReadTimeoutMs: 0,
  proxyReadHeaderTimeoutMs: 10_000,
  proxyWriteTimeoutMs: 0,
  proxyIdleTimeoutMs: 30_000,
  reconnectDelayMs: 5_000,
  demoteDelayMs: 10_000,
  consulTTLMs: 10_000,
  consulLockDelayMs: 1_000,
  etcdTTLMs: 10_000,
} as const;

/** Consul refuses session TTLs above 24h (86400s) and clamps lock-delay to 60s. */
export const CONSUL_MAX_TTL_MS = 86_400_000;
export const CONSUL_MIN_TTL_MS = 1_000;
export const CONSUL_MAX_LOCK_DELAY_MS = 60_000;
/**
 * etcd grants at least 1.5 × its election timeout, rounded up to a whole
 * second: 2s with the default 1s election timeout. A shorter TTL would
 * silently become that anyway.
 */
export const ETCD_MIN_TTL_MS = 2_000;
export const ETCD_MAX_TTL_MS = 86_400_000;

export interface ResolveOptions {
  source: string;
  /** This machine's hostname, the default for lease.hostname. */
  hostname: string;
}

/**
 * Applies defaults and the rules that involve more than one key. Every
 * rule runs even when an earlier one failed, so all problems are reported.
 */
export function resolveConfig(raw: RawConfig, opts: ResolveOptions): { config: Config; problems: ConfigProblem[] } {
  const r = new Reader(raw);
  const problems: ConfigProblem[] = [];
  const problem = (kind: ConfigProblem['kind'], key: string, message: string, pos?: Position): void => {
    const p = pos ?? r.pos(key);
    problems.push({ kind, path: key, ...(p ? { line: p.line, column: p.column } : {}), message });
  };
  const where = (key: string): string => {
    const p = r.pos(key);
    return at(p?.line, p?.column);
  };
  const required = (key: string, fallback: string): string => {
    const v = r.str(key);
    if (v === undefined) return fallback;
    if (v.trim() === '') {
      problem('missing', key, `${key}${where(key)}: must not be empty (default ${fallback})`);
      return fallback;
    }
    return v;
  };

  // data, fuse
  const dataDir = required('data.dir', DEFAULTS.dataDir);
  const fuseDir = required('fuse.dir', DEFAULTS.fuseDir);
  const retentionMs = r.ms('data.retention') ?? DEFAULTS.retentionMs;
  const retentionMonitorIntervalMs = r.ms('data.retention-monitor-interval') ?? DEFAULTS.retentionMonitorIntervalMs;
  if (retentionMonitorIntervalMs === 0) {
    problem(
      'invalid-value',
      'data.retention-monitor-interval',
      `data.retention-monitor-interval${where('data.retention-monitor-interval')}: must be greater than 0`,
    );
  }
  checkDirs(dataDir, fuseDir, r, problem);

  // http
  const httpAddr = required('http.addr', DEFAULTS.httpAddr);
  let listen = parseHostPort(httpAddr);
  if (listen === undefined) {
    problem(
      'invalid-value',
      'http.addr',
      `http.addr${where('http.addr')}: ${JSON.stringify(httpAddr)} is not a listen address; expected [host]:port, e.g. :20202`,
    );
    listen = parseHostPort(DEFAULTS.httpAddr)!;
  }

  const tls = resolveTLS(r, problem);

  // proxy
  const proxyAddr = r.str('proxy.addr') ?? '';
  const proxyTarget = r.str('proxy.target') ?? '';
  const proxyDB = r.str('proxy.db') ?? '';
  if (proxyAddr !== '' && parseHostPort(proxyAddr) === undefined) {
    problem(
      'invalid-value',
      'proxy.addr',
      `proxy.addr${where('proxy.addr')}: ${JSON.stringify(proxyAddr)} is not a listen address; expected [host]:port, e.g. :8080`,
    );
  }
  if (proxyTarget !== '') {
    if (parseHostPort(proxyTarget) === undefined) {
      problem(
        'invalid-value',
        'proxy.target',
        `proxy.target${where('proxy.target')}: ${JSON.stringify(proxyTarget)} is not an address; expected host:port of the application, e.g. localhost:8081`,
      );
    }
    const sectionAt = r.sectionAt('proxy');
    if (proxyAddr === '' && !r.rejected('proxy.addr'))
      problem('missing', 'proxy.addr', `proxy.addr is required when proxy.target is set${sectionAt}`, r.pos('proxy.target'));
    if (proxyDB === '' && !r.rejected('proxy.db'))
      problem(
        'missing',
        'proxy.db',
        `proxy.db is required when proxy.target is set (the database whose TXID the proxy tracks)${sectionAt}`,
        r.pos('proxy.target'),
      );
  }

  // lease
  const typeText = r.str('lease.type');
  let leaseType: LeaseType = 'static';
  if (typeText === undefined && !r.rejected('lease.type')) {
    problem(
      'missing',
      'lease.type',
      `lease.type is required${r.sectionAt('lease')}; allowed values: ${LEASE_TYPES.join(', ')}`,
      r.sectionPos('lease'),
    );
  } else {
    leaseType = typeText as LeaseType;
  }
  const candidate = r.bool('lease.candidate') ?? true;
  const promote = r.bool('lease.promote') ?? false;
  const databases = r.list('lease.databases') ?? [];
  const advertiseText = nonEmpty(r.str('lease.advertise-url'));
  if (advertiseText !== undefined && !isHttpURL(advertiseText)) {
    problem(
      'invalid-value',
      'lease.advertise-url',
      `lease.advertise-url${where('lease.advertise-url')}: ${JSON.stringify(advertiseText)} is not an http:// or https:// URL`,
    );
  }
  const isStaticReplica = typeText === 'static' && !candidate;
  if (isStaticReplica && advertiseText === undefined && !r.rejected('lease.advertise-url')) {
    problem(
      'missing',
      'lease.advertise-url',
      `lease.advertise-url is required on a static-lease replica (lease.candidate: false)${r.sectionAt('lease')}; set it to the primary's API URL, e.g. http://primary:20202`,
      r.pos('lease.candidate'),
    );
  }
  let hostname = nonEmpty(r.str('lease.hostname'));
  if (hostname === undefined && isStaticReplica && advertiseText !== undefined && isHttpURL(advertiseText)) {
    // On a static replica the lease describes the primary, so the default
    // name is the primary's (from its URL), not this machine's.
    hostname = new URL(advertiseText).hostname;
  }
  hostname ??= opts.hostname;
  const servesTLS = tls !== null && tls.cert !== '';
  const advertiseURL = advertiseText ?? `${servesTLS ? 'https' : 'http'}://${hostname}:${listen.port}`;
  // A static replica's advertise-url is the primary's; everywhere else it
  // is this node's own, and must say how this node really listens.
  if (!isStaticReplica && advertiseText !== undefined && isHttpURL(advertiseText)) {
    const https = new URL(advertiseText).protocol === 'https:';
    if (https !== servesTLS && !r.rejected('http.tls')) {
      problem(
        'conflict',
        'lease.advertise-url',
        https
          ? `lease.advertise-url${where('lease.advertise-url')}: is https:// but this node serves cleartext; set http.tls.cert and http.tls.key, or advertise http://`
          : `lease.advertise-url${where('lease.advertise-url')}: is http:// but this node serves TLS (http.tls.cert); advertise https://`,
      );
    }
  }
  if (databases.length > 0 && candidate) {
    problem(
      'conflict',
      'lease.databases',
      `lease.databases${where('lease.databases')}: a database filter is only allowed when lease.candidate is false (a node that may become primary must hold every database)`,
    );
  }
  if (promote && !candidate) {
    problem(
      'conflict',
      'lease.promote',
      `lease.promote${where('lease.promote')}: only allowed when lease.candidate is true (a non-candidate cannot become primary)`,
    );
  }
  if (promote && typeText === 'static') {
    problem(
      'conflict',
      'lease.promote',
      `lease.promote${where('lease.promote')}: requires lease.type consul or etcd (static leases cannot be handed off)`,
    );
  }

  const consulURL = r.str('lease.consul.url') ?? '';
  const consulKey = r.str('lease.consul.key') ?? '';
  const ttlMs = r.ms('lease.consul.ttl') ?? DEFAULTS.consulTTLMs;
  const lockDelayMs = r.ms('lease.consul.lock-delay') ?? DEFAULTS.consulLockDelayMs;
  if (typeText === 'consul') {
    const sectionAt = r.sectionAt('lease.consul') || r.sectionAt('lease');
    if (consulURL.trim() === '' && !r.rejected('lease.consul.url')) {
      problem(
        'missing',
        'lease.consul.url',
        `lease.consul.url is required when lease.type is consul${sectionAt}; e.g. http://localhost:8500 or https://:TOKEN@consul.example.com/prefix`,
        r.pos('lease.consul.url') ?? r.sectionPos('lease.consul') ?? r.pos('lease.type'),
      );
    } else if (!isHttpURL(consulURL)) {
      problem(
        'invalid-value',
        'lease.consul.url',
        `lease.consul.url${where('lease.consul.url')}: ${redactURL(consulURL)} is not an http:// or https:// URL`,
      );
    }
    if (consulKey.trim() === '' && !r.rejected('lease.consul.key')) {
      problem(
        'missing',
        'lease.consul.key',
        `lease.consul.key is required when lease.type is consul${sectionAt}; e.g. litefs/primary`,
        r.pos('lease.consul.key') ?? r.sectionPos('lease.consul') ?? r.pos('lease.type'),
      );
    }
  }
  if (r.has('lease.consul.ttl') && (ttlMs < CONSUL_MIN_TTL_MS || ttlMs > CONSUL_MAX_TTL_MS)) {
    problem(
      'invalid-value',
      'lease.consul.ttl',
      `lease.consul.ttl${where('lease.consul.ttl')}: ${formatGoDuration(ttlMs)} is outside 1s..24h (Consul accepts session TTLs up to 86400s; its default minimum is 10s)`,
    );
  }
  if (lockDelayMs > CONSUL_MAX_LOCK_DELAY_MS) {
    problem(
      'invalid-value',
      'lease.consul.lock-delay',
      `lease.consul.lock-delay${where('lease.consul.lock-delay')}: ${formatGoDuration(lockDelayMs)} is more than 60s, the most Consul allows`,
    );
  }

  const etcd = resolveEtcd(r, typeText === 'etcd', problem, where);

  // log
  const logDebug = r.bool('log.debug') ?? false;
  const level = (r.str('log.level') as LogLevelName | undefined) ?? (logDebug ? 'debug' : 'info');

  const config: Config = {
    source: opts.source,
    exitOnError: r.bool('exit-on-error') ?? true,
    skipSync: r.bool('skip-sync') ?? false,
    strictVerify: r.bool('strict-verify') ?? false,
    exec: r.exec('exec') ?? [],
    data: {
      dir: dataDir,
      compress: r.bool('data.compress') ?? true,
      retentionMs,
      retentionMonitorIntervalMs,
    },
    fuse: {
      dir: fuseDir,
      allowOther: r.bool('fuse.allow-other') ?? false,
      debug: r.bool('fuse.debug') ?? false,
    },
    http: {
      addr: httpAddr,
      host: listen.host,
      port: listen.port,
      snapshotTimeoutMs: r.ms('http.snapshot-timeout') ?? retentionMs,
      token: r.str('http.token') ?? '',
      tls,
      maxImportSize: r.bytes('http.max-import-size') ?? null,
    },
    proxy: {
      enabled: proxyTarget !== '',
      addr: proxyAddr,
      target: proxyTarget,
      db: proxyDB,
      debug: r.bool('proxy.debug') ?? false,
      passthrough: r.list('proxy.passthrough') ?? [],
      alwaysForward: r.list('proxy.always-forward') ?? [],
      maxLagMs: r.ms('proxy.max-lag') ?? DEFAULTS.proxyMaxLagMs,
      primaryRedirectTimeoutMs: r.ms('proxy.primary-redirect-timeout') ?? DEFAULTS.proxyPrimaryRedirectTimeoutMs,
      readTimeoutMs: r.ms('proxy.read-timeout') ?? DEFAULTS.proxyReadTimeoutMs,
      readHeaderTimeoutMs: r.ms('proxy.read-header-timeout') ?? DEFAULTS.proxyReadHeaderTimeoutMs,
      writeTimeoutMs: r.ms('proxy.write-timeout') ?? DEFAULTS.proxyWriteTimeoutMs,
      idleTimeoutMs: r.ms('proxy.idle-timeout') ?? DEFAULTS.proxyIdleTimeoutMs,
    },
    lease: {
      type: leaseType,
      hostname,
      advertiseURL,
      candidate,
      promote,
      reconnectDelayMs: r.ms('lease.reconnect-delay') ?? DEFAULTS.reconnectDelayMs,
      demoteDelayMs: r.ms('lease.demote-delay') ?? DEFAULTS.demoteDelayMs,
      databases,
      consul: { url: consulURL, key: consulKey, ttlMs, lockDelayMs },
      etcd,
    },
    log: {
      format: (r.str('log.format') as LogFormat | undefined) ?? 'text',
      timestamp: r.bool('log.timestamp') ?? false,
      debug: level === 'debug',
      level,
    },
  };
  return { config, problems };
}

type ProblemFn = (kind: ConfigProblem['kind'], key: string, message: string, pos?: Position) => void;

/** lease.etcd: endpoints and key are required for type etcd; the TTL is whole seconds within etcd's limits. */
function resolveEtcd(r: Reader, required: boolean, problem: ProblemFn, where: (key: string) => string): EtcdConfig {
  const endpoints = r.list('lease.etcd.endpoints') ?? [];
  const key = r.str('lease.etcd.key') ?? '';
  const ttlMs = r.ms('lease.etcd.ttl') ?? DEFAULTS.etcdTTLMs;
  const tls = { ca: r.str('lease.etcd.tls.ca') ?? '', cert: r.str('lease.etcd.tls.cert') ?? '', key: r.str('lease.etcd.tls.key') ?? '' };
  if (required) {
    const sectionAt = r.sectionAt('lease.etcd') || r.sectionAt('lease');
    const fallbackPos = r.sectionPos('lease.etcd') ?? r.pos('lease.type');
    if (endpoints.length === 0 && !r.rejected('lease.etcd.endpoints')) {
      problem(
        'missing',
        'lease.etcd.endpoints',
        `lease.etcd.endpoints is required when lease.type is etcd${sectionAt}; a list of member client URLs, e.g. ["http://etcd1:2379", "http://etcd2:2379"]`,
        r.pos('lease.etcd.endpoints') ?? fallbackPos,
      );
    }
    if (key.trim() === '' && !r.rejected('lease.etcd.key')) {
      problem(
        'missing',
        'lease.etcd.key',
        `lease.etcd.key is required when lease.type is etcd${sectionAt}; e.g. litefs/primary`,
        r.pos('lease.etcd.key') ?? fallbackPos,
      );
    }
  }
  for (const e of endpoints) {
    const why = etcdEndpointProblem(e);
    if (why !== null) {
      problem('invalid-value', 'lease.etcd.endpoints', `lease.etcd.endpoints${where('lease.etcd.endpoints')}: ${redactURL(e)} ${why}`);
    }
  }
  if (r.has('lease.etcd.ttl') && (ttlMs < ETCD_MIN_TTL_MS || ttlMs > ETCD_MAX_TTL_MS || ttlMs % 1000 !== 0)) {
    problem(
      'invalid-value',
      'lease.etcd.ttl',
      `lease.etcd.ttl${where('lease.etcd.ttl')}: ${formatGoDuration(ttlMs)} must be a whole number of seconds within 2s..24h (etcd counts lease TTLs in seconds and grants at least 2s with its default election timeout)`,
    );
  }
  if ((tls.cert === '') !== (tls.key === '')) {
    const given = tls.cert !== '' ? 'lease.etcd.tls.cert' : 'lease.etcd.tls.key';
    const other = tls.cert !== '' ? 'lease.etcd.tls.key' : 'lease.etcd.tls.cert';
    problem('missing', other, `${other} is required with ${given}${where(given)}: a client certificate needs its key`, r.pos(given));
  }
  const anyTLS = tls.ca !== '' || tls.cert !== '';
  if (anyTLS && endpoints.length > 0 && !endpoints.some((e) => e.startsWith('https://'))) {
    problem(
      'conflict',
      'lease.etcd.tls',
      `lease.etcd.tls${at(r.sectionPos('lease.etcd.tls')?.line, r.sectionPos('lease.etcd.tls')?.column)}: only used for https:// endpoints, and every endpoint in lease.etcd.endpoints is http://`,
      r.sectionPos('lease.etcd.tls'),
    );
  }
  return { endpoints, key, ttlMs, tls };
}

/** Why an etcd endpoint is unusable, or null: it must be http(s)://host[:port] and nothing more. */
function etcdEndpointProblem(text: string): string | null {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'is not a URL; expected http://host:2379 or https://host:2379';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must use http:// or https://';
  if (u.hostname === '') return 'has no host';
  if (u.username !== '' || u.password !== '')
    return 'must not carry credentials (etcd authentication is not supported; use client certificates)';
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '')
    return 'must be scheme://host:port only, without a path';
  return null;
}

/** The mount must not sit in (or be) the data directory, nor the other way round: FUSE would recurse into itself. */
function checkDirs(dataDir: string, fuseDir: string, r: Reader, problem: ProblemFn): void {
  const data = path.resolve(dataDir);
  const fuse = path.resolve(fuseDir);
  const inside = (child: string, parent: string): boolean => child.startsWith(parent === '/' ? '/' : `${parent}/`);
  const fuseAt = at(r.pos('fuse.dir')?.line, r.pos('fuse.dir')?.column);
  const pos = r.pos('fuse.dir') ?? r.pos('data.dir');
  if (data === fuse) {
    problem(
      'conflict',
      'fuse.dir',
      `fuse.dir${fuseAt}: ${JSON.stringify(fuseDir)} is the same directory as data.dir; the mount point must be outside the data directory`,
      pos,
    );
  } else if (inside(fuse, data)) {
    problem(
      'conflict',
      'fuse.dir',
      `fuse.dir${fuseAt}: ${JSON.stringify(fuseDir)} is inside data.dir ${JSON.stringify(dataDir)}; the mount point must be outside the data directory`,
      pos,
    );
  } else if (inside(data, fuse)) {
    const dataAt = at(r.pos('data.dir')?.line, r.pos('data.dir')?.column);
    problem(
      'conflict',
      'data.dir',
      `data.dir${dataAt}: ${JSON.stringify(dataDir)} is inside fuse.dir ${JSON.stringify(fuseDir)}; the data directory must be outside the mount point`,
      r.pos('data.dir') ?? pos,
    );
  }
}

/**
 * http.tls: cert and key come as a pair (serve TLS, and present them as a
 * client certificate when dialling); client-auth needs the CA that signs
 * the clients. A section with only `ca` verifies the primary over https://
 * while this node itself serves cleartext.
 */
function resolveTLS(r: Reader, problem: ProblemFn): HttpTLSConfig | null {
  const keys = ['cert', 'key', 'ca', 'client-auth'].map((k) => `http.tls.${k}`);
  if (!keys.some((k) => r.has(k))) return null;
  const cert = nonEmpty(r.str('http.tls.cert')) ?? '';
  const key = nonEmpty(r.str('http.tls.key')) ?? '';
  const ca = nonEmpty(r.str('http.tls.ca')) ?? '';
  const clientAuth = r.bool('http.tls.client-auth') ?? false;
  const at2 = (k: string): string => at(r.pos(k)?.line, r.pos(k)?.column);
  const sectionAt = r.sectionAt('http.tls');
  if (cert !== '' && key === '' && !r.rejected('http.tls.key')) {
    problem(
      'missing',
      'http.tls.key',
      `http.tls.key is required with http.tls.cert${sectionAt} (the certificate's private key)`,
      r.pos('http.tls.cert'),
    );
  }
  if (key !== '' && cert === '' && !r.rejected('http.tls.cert')) {
    problem(
      'missing',
      'http.tls.cert',
      `http.tls.cert is required with http.tls.key${sectionAt} (the certificate the key belongs to)`,
      r.pos('http.tls.key'),
    );
  }
  if (clientAuth && ca === '' && !r.rejected('http.tls.ca')) {
    problem(
      'missing',
      'http.tls.ca',
      `http.tls.ca is required with http.tls.client-auth${at2('http.tls.client-auth')} (the CA that signs the clients' certificates)`,
      r.pos('http.tls.client-auth'),
    );
  }
  if (clientAuth && cert === '' && !r.rejected('http.tls.cert')) {
    problem(
      'conflict',
      'http.tls.client-auth',
      `http.tls.client-auth${at2('http.tls.client-auth')}: needs http.tls.cert and http.tls.key (client certificates are checked only on a TLS listener)`,
    );
  }
  return { cert, key, ca, clientAuth };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}

function isHttpURL(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** A URL with any password (the Consul ACL token) replaced, safe for messages and logs. */
export function redactURL(s: string): string {
  try {
    const u = new URL(s);
    if (u.password !== '') u.password = 'REDACTED';
    return JSON.stringify(u.toString());
  } catch {
    return JSON.stringify(s.replace(/\/\/([^/@]*):([^/@]*)@/, '//$1:REDACTED@'));
  }
}

/** Typed access to the walked values; the walker already checked each kind. */
class Reader {
  constructor(private readonly raw: RawConfig) {}

  has(key: string): boolean {
    return this.raw.values.has(key);
  }

  /** True if `key`, or a section enclosing it, was written but rejected. */
  rejected(key: string): boolean {
    if (this.raw.rejected.has('')) return true;
    const parts = key.split('.');
    for (let i = 1; i <= parts.length; i++) if (this.raw.rejected.has(parts.slice(0, i).join('.'))) return true;
    return false;
  }

  pos(key: string): Position | undefined {
    return this.raw.values.get(key)?.pos;
  }

  sectionPos(key: string): Position | undefined {
    return this.raw.sections.get(key);
  }

  /** " (lease section at line 5)" or "". */
  sectionAt(key: string): string {
    const p = this.raw.sections.get(key);
    return p === undefined ? '' : ` (${key} section at line ${p.line})`;
  }

  private get(key: string): RawEntry['value'] | undefined {
    return this.raw.values.get(key)?.value;
  }

  bool(key: string): boolean | undefined {
    const v = this.get(key);
    return typeof v === 'boolean' ? v : undefined;
  }

  str(key: string): string | undefined {
    const v = this.get(key);
    return typeof v === 'string' ? v : undefined;
  }

  ms(key: string): number | undefined {
    const v = this.get(key);
    return typeof v === 'number' ? v : undefined;
  }

  bytes(key: string): number | undefined {
    return this.ms(key);
  }

  list(key: string): string[] | undefined {
    const v = this.get(key);
    return Array.isArray(v) && v.every((x): x is string => typeof x === 'string') ? v : undefined;
  }

  exec(key: string): ExecEntry[] | undefined {
    const v = this.get(key);
    if (!Array.isArray(v)) return undefined;
    const out: ExecEntry[] = [];
    for (const x of v) if (typeof x === 'object') out.push(x);
    return out;
  }
}
