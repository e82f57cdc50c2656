/**
 * The shape of litefs.yml (LiteFS v0.5 key names). Only shapes and scalar
 * kinds live here; defaults and rules that involve several keys are in
 * resolve.ts. Key order is the order used in "allowed keys" messages.
 */
export type FieldSpec =
  | { kind: 'bool' }
  | { kind: 'string' }
  | { kind: 'duration' }
  /** A byte count: 1048576, "100MB", "1GiB". */
  | { kind: 'size' }
  /** A string never echoed in messages; written but empty is an error (an unset ${VAR}), not "off". */
  | { kind: 'secret' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'string-list' }
  | { kind: 'exec' }
  | SectionSpec
  | { kind: 'unsupported'; reason: string };

export interface SectionSpec {
  kind: 'section';
  /** How messages name the section's keys: "allowed keys in lease: ...". */
  label: string;
  fields: Readonly<Record<string, FieldSpec>>;
}

const bool = { kind: 'bool' } as const;
const str = { kind: 'string' } as const;
const duration = { kind: 'duration' } as const;
const strings = { kind: 'string-list' } as const;
const size = { kind: 'size' } as const;
const secret = { kind: 'secret' } as const;

export const LEASE_TYPES = ['static', 'consul', 'etcd'] as const;
export const LOG_FORMATS = ['text', 'json'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export const EXEC_ENTRY_KEYS = ['cmd', 'if-candidate'] as const;

export const CONFIG_SCHEMA: SectionSpec = {
  kind: 'section',
  label: 'top-level',
  fields: {
    'exit-on-error': bool,
    'skip-sync': bool,
    'strict-verify': bool,
    exec: { kind: 'exec' },
    data: {
      kind: 'section',
      label: 'data',
      fields: {
        dir: str,
        compress: bool,
        retention: duration,
        'retention-monitor-interval': duration,
      },
    },
    fuse: {
      kind: 'section',
      label: 'fuse',
      fields: { dir: str, 'allow-other': bool, debug: bool },
    },
    http: {
      kind: 'section',
      label: 'http',
      fields: {
        addr: str,
        'snapshot-timeout': duration,
        token: secret,
        tls: {
          kind: 'section',
          label: 'http.tls',
          fields: { cert: str, key: str, ca: str, 'client-auth': bool },
        },
        'max-import-size': size,
      },
    },
    proxy: {
      kind: 'section',
      label: 'proxy',
      fields: {
        addr: str,
        target: str,
        db: str,
        debug: bool,
        passthrough: strings,
        'always-forward': strings,
        'max-lag': duration,
        'primary-redirect-timeout': duration,
        'read-timeout': duration,
        'read-header-timeout': duration,
        'write-timeout': duration,
        'idle-timeout': duration,
      },
    },
    lease: {
      kind: 'section',
      label: 'lease',
      fields: {
        type: { kind: 'enum', values: LEASE_TYPES },
        hostname: str,
        'advertise-url': str,
        candidate: bool,
        promote: bool,
        'reconnect-delay': duration,
        'demote-delay': duration,
        databases: strings,
        consul: {
          kind: 'section',
          label: 'lease.consul',
          fields: { url: str, key: str, ttl: duration, 'lock-delay': duration },
        },
        etcd: {
          kind: 'section',
          label: 'lease.etcd',
          fields: {
            endpoints: strings,
            key: str,
            ttl: duration,
            tls: { kind: 'section', label: 'lease.etcd.tls', fields: { ca: str, cert: str, key: str } },
          },
        },
      },
    },
    log: {
      kind: 'section',
      label: 'log',
      fields: {
        format: { kind: 'enum', values: LOG_FORMATS },
        timestamp: bool,
        debug: bool,
        level: { kind: 'enum', values: LOG_LEVELS },
      },
    },
    backup: {
      kind: 'unsupported',
      reason:
        'backups to LiteFS Cloud are not supported by litefs-ts (LiteFS Cloud was retired on 2024-10-15); ' +
        'remove the backup section and back up the primary with a tool such as Litestream',
    },
    tracing: {
      kind: 'unsupported',
      reason: 'the rolling trace log is not supported by litefs-ts; remove the tracing section ' + '(log.debug: true gives verbose logs)',
    },
  },
};
