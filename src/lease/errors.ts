import { CodedError } from '../internal/index.js';
import type { PrimaryInfo } from './types.js';

export type LeaseErrorCode =
  /** Another node holds the lease (or Consul's lock-delay still blocks the key). */
  | 'ERR_LEASE_PRIMARY_EXISTS'
  /** Nobody holds the lease right now. */
  | 'ERR_LEASE_NO_PRIMARY'
  /** The lease (Consul session) no longer exists; this node is not primary. */
  | 'ERR_LEASE_EXPIRED'
  /** Static leases cannot be handed off. */
  | 'ERR_LEASE_HANDOFF_UNSUPPORTED'
  /** Nobody took a handoff request within its timeout. */
  | 'ERR_LEASE_HANDOFF_TIMEOUT'
  /** A Consul HTTP call failed: transport error, timeout or non-2xx status. */
  | 'ERR_LEASE_CONSUL'
  /** An etcd call failed on every endpoint: transport error, timeout, or an error status. */
  | 'ERR_LEASE_ETCD'
  /** No renewal succeeded within TTL minus the fence margin: this node stopped trusting its lease. */
  | 'ERR_LEASE_FENCED'
  /** The lease or leaser was closed. */
  | 'ERR_LEASE_CLOSED'
  /** Consul already holds a different cluster ID. */
  | 'ERR_LEASE_CLUSTER_ID_MISMATCH'
  /** The primary key holds something that is not PrimaryInfo JSON. */
  | 'ERR_LEASE_INVALID_PRIMARY_INFO'
  /** A non-candidate tried to become primary. */
  | 'ERR_LEASE_NOT_CANDIDATE'
  /** Bad leaser options (missing key, unparsable URL, ...). */
  | 'ERR_LEASE_INVALID_OPTIONS';

export class LeaseError extends CodedError<LeaseErrorCode> {}

/** ERR_LEASE_PRIMARY_EXISTS, carrying the current holder when it could be read. */
export class PrimaryExistsError extends LeaseError {
  readonly primary: PrimaryInfo | undefined;

  constructor(message: string, primary?: PrimaryInfo) {
    super('ERR_LEASE_PRIMARY_EXISTS', message);
    this.primary = primary;
  }
}

/**
 * ERR_LEASE_CONSUL: one Consul HTTP call that failed. The URL never carries
 * the ACL token (it travels in the X-Consul-Token header).
 */
export class ConsulRequestError extends LeaseError {
  readonly operation: string;
  readonly method: string;
  readonly url: string;
  /** HTTP status when Consul answered, undefined for transport errors and timeouts. */
  readonly status: number | undefined;
  readonly timedOut: boolean;

  constructor(fields: {
    operation: string;
    method: string;
    url: string;
    status?: number;
    timedOut: boolean;
    detail: string;
    cause?: unknown;
  }) {
    super('ERR_LEASE_CONSUL', `consul ${fields.operation} (${fields.method} ${fields.url}) failed: ${fields.detail}`, {
      cause: fields.cause,
    });
    this.operation = fields.operation;
    this.method = fields.method;
    this.url = fields.url;
    this.status = fields.status;
    this.timedOut = fields.timedOut;
  }
}

/**
 * ERR_LEASE_ETCD: one etcd call that failed on every endpoint it tried.
 * `attempts` says what each endpoint answered, in the order tried.
 */
export class EtcdRequestError extends LeaseError {
  readonly operation: string;
  /** HTTP status of the last answer, undefined for transport errors and timeouts. */
  readonly status: number | undefined;
  /** gRPC status code from etcd's error body (5 = not found, 14 = unavailable...), when it sent one. */
  readonly grpcCode: number | undefined;
  readonly timedOut: boolean;
  readonly attempts: readonly string[];

  constructor(fields: {
    operation: string;
    status?: number;
    grpcCode?: number;
    timedOut: boolean;
    attempts: readonly string[];
    cause?: unknown;
  }) {
    super('ERR_LEASE_ETCD', `etcd ${fields.operation} failed: ${fields.attempts.join('; ')}`, { cause: fields.cause });
    this.operation = fields.operation;
    this.status = fields.status;
    this.grpcCode = fields.grpcCode;
    this.timedOut = fields.timedOut;
    this.attempts = fields.attempts;
  }
}

export function isLeaseError(err: unknown, code?: LeaseErrorCode): err is LeaseError {
  return err instanceof LeaseError && (code === undefined || err.code === code);
}
