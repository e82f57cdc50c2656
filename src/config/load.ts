import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isErrno } from '../internal/index.js';
import { withHostnameDefault, type Env } from './env.js';
import { ConfigError } from './errors.js';
import { readYaml } from './read-yaml.js';
import { resolveConfig } from './resolve.js';
import type { Config } from './types.js';

export interface ParseConfigOptions {
  /** Expand $VAR / ${VAR} / ${A == 'b'} references in values (default true; `-no-expand-env` turns it off). */
  expandEnv?: boolean;
  /** Variables to expand against (default process.env). HOSTNAME defaults to the OS hostname. */
  env?: NodeJS.ProcessEnv | Env;
  /** This machine's hostname (default os.hostname()); used for HOSTNAME and lease.hostname defaults. */
  hostname?: string;
}

/**
 * Parses litefs.yml text into a defaulted Config. Throws ConfigError with
 * code ERR_CONFIG_SYNTAX (YAML errors) or ERR_CONFIG_INVALID (every schema
 * and cross-key problem found, not only the first).
 */
export function parseConfig(text: string, sourceName = 'litefs.yml', opts: ParseConfigOptions = {}): Config {
  const hostname = opts.hostname ?? os.hostname();
  const env = opts.expandEnv === false ? null : withHostnameDefault(opts.env ?? process.env, hostname);
  const { raw, syntax, problems } = readYaml(text, env);
  if (syntax.length > 0) throw new ConfigError('ERR_CONFIG_SYNTAX', sourceName, syntax);
  const resolved = resolveConfig(raw, { source: sourceName, hostname });
  const all = [...problems, ...resolved.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (all.length > 0) throw new ConfigError('ERR_CONFIG_INVALID', sourceName, all);
  return resolved.config;
}

export interface FindConfigOptions {
  /** Directory searched first (default process.cwd()). */
  cwd?: string;
  /** Home directory searched second (default os.homedir(); skipped when ''). */
  home?: string;
}

/** The search order LiteFS uses when no -config flag is given. */
export function configSearchPaths(opts: FindConfigOptions = {}): string[] {
  const paths = [path.resolve(opts.cwd ?? process.cwd(), 'litefs.yml')];
  const home = opts.home ?? safeHomedir();
  if (home !== '') paths.push(path.join(home, 'litefs.yml'));
  paths.push('/etc/litefs.yml');
  return paths;
}

/** Returns the first existing file of ./litefs.yml, ~/litefs.yml, /etc/litefs.yml, or null. */
export async function findConfigFile(opts: FindConfigOptions = {}): Promise<string | null> {
  for (const p of configSearchPaths(opts)) {
    try {
      if ((await stat(p)).isFile()) return p;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue;
      throw new ConfigError('ERR_CONFIG_READ', p, [], { cause: err, message: `cannot read config file ${p}: ${String(err)}` });
    }
  }
  return null;
}

/**
 * Reads and parses a config file. With no path, searches the standard
 * locations (findConfigFile) and fails with ERR_CONFIG_NOT_FOUND if none exists.
 */
export async function loadConfig(configPath?: string | null, opts: ParseConfigOptions & FindConfigOptions = {}): Promise<Config> {
  let file = configPath ?? null;
  if (file === null) {
    file = await findConfigFile(opts);
    if (file === null) {
      const searched = configSearchPaths(opts).join(', ');
      throw new ConfigError('ERR_CONFIG_NOT_FOUND', 'litefs.yml', [], {
        message: `config file not found; searched ${searched} (pass a path to use another file)`,
      });
    }
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new ConfigError('ERR_CONFIG_NOT_FOUND', file, [], { cause: err, message: `config file not found: ${file}` });
    }
    throw new ConfigError('ERR_CONFIG_READ', file, [], { cause: err, message: `cannot read config file ${file}: ${String(err)}` });
  }
  return parseConfig(text, file, opts);
}

function safeHomedir(): string {
  try {
    return os.homedir();
  } catch {
    return '';
  }
}
