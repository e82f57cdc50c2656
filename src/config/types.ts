/**
 * The fully defaulted configuration. Keys follow LiteFS v0.5's litefs.yml
 * (kebab-case there, camelCase here); every duration is in milliseconds and
 * named `...Ms`.
 */
export interface Config {
  /** The file (or name) the config was read from, for messages. */
  source: string;
  exitOnError: boolean;
  skipSync: boolean;
  strictVerify: boolean;
  /** Commands to run once ready; all but the last run to completion first. */
  exec: ExecEntry[];
  data: DataConfig;
  fuse: FuseConfig;
  http: HttpConfig;
  proxy: ProxyConfig;
  lease: LeaseConfig;
  log: LogConfig;
}

export interface ExecEntry {
  cmd: string;
  /** Run only when this node is a lease candidate. */
  ifCandidate: boolean;
}

export interface DataConfig {
  dir: string;
  compress: boolean;
  retentionMs: number;
  retentionMonitorIntervalMs: number;
}

export interface FuseConfig {
  dir: string;
  allowOther: boolean;
  debug: boolean;
}

export interface HttpConfig {
  /** As written, e.g. ":20202" or "127.0.0.1:20202". */
  addr: string;
  /** Host part of `addr`; '' means every interface. */
  host: string;
  port: number;
  snapshotTimeoutMs: number;
  /** Shared secret every API request carries as `Authorization: Bearer …`; '' = no token. */
  token: string;
  /** TLS for the node API, served and dialled; null = cleartext (h2c), as LiteFS. */
  tls: HttpTLSConfig | null;
  /** Largest accepted POST /import body in bytes; null = only the data volume's free space limits it. */
  maxImportSize: number | null;
}

export interface HttpTLSConfig {
  /** PEM certificate chain this node serves and presents as a client; '' = serve cleartext. */
  cert: string;
  /** PEM private key of `cert`. */
  key: string;
  /** PEM CA bundle peers' certificates are verified against; '' = the system's CAs. */
  ca: string;
  /** Refuse API clients without a certificate signed by `ca` (mutual TLS). */
  clientAuth: boolean;
}

export interface ProxyConfig {
  /** True when `target` is set (LiteFS runs the proxy only then). */
  enabled: boolean;
  addr: string;
  target: string;
  db: string;
  debug: boolean;
  passthrough: string[];
  alwaysForward: string[];
  maxLagMs: number;
  primaryRedirectTimeoutMs: number;
  readTimeoutMs: number;
  readHeaderTimeoutMs: number;
  writeTimeoutMs: number;
  idleTimeoutMs: number;
}

export type LeaseType = 'static' | 'consul' | 'etcd';

export interface LeaseConfig {
  type: LeaseType;
  hostname: string;
  advertiseURL: string;
  candidate: boolean;
  promote: boolean;
  reconnectDelayMs: number;
  demoteDelayMs: number;
  databases: string[];
  /** Always present; only used (and only validated as required) when type is consul. */
  consul: ConsulConfig;
  /** Always present; only used (and only validated as required) when type is etcd. */
  etcd: EtcdConfig;
}

export interface ConsulConfig {
  url: string;
  key: string;
  ttlMs: number;
  lockDelayMs: number;
}

export interface EtcdConfig {
  /** Client URLs of the members, tried in turn. */
  endpoints: string[];
  key: string;
  /** A whole number of seconds (etcd's unit). */
  ttlMs: number;
  /** File paths for https:// endpoints; '' when unset. */
  tls: { ca: string; cert: string; key: string };
}

export type LogFormat = 'text' | 'json';
export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

export interface LogConfig {
  format: LogFormat;
  timestamp: boolean;
  /** True when `level` is debug (LiteFS's `log.debug`). */
  debug: boolean;
  level: LogLevelName;
}
