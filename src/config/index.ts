export { loadConfig, parseConfig, findConfigFile, configSearchPaths } from './load.js';
export type { ParseConfigOptions, FindConfigOptions } from './load.js';
export { ConfigError } from './errors.js';
export type { ConfigProblem, ConfigProblemKind, ConfigErrorCode } from './errors.js';
export { parseGoDuration, formatGoDuration } from './duration.js';
export { parseByteSize } from './size.js';
export { expandEnv, evaluateReference, withHostnameDefault } from './env.js';
export type { Env } from './env.js';
export { parseHostPort } from './addr.js';
export { DEFAULTS, redactURL } from './resolve.js';
export type {
  Config,
  ExecEntry,
  DataConfig,
  FuseConfig,
  HttpConfig,
  HttpTLSConfig,
  ProxyConfig,
  LeaseConfig,
  LeaseType,
  ConsulConfig,
  EtcdConfig,
  LogConfig,
  LogFormat,
  LogLevelName,
} from './types.js';
