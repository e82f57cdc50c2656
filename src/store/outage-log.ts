import { describeError, type Logger } from '../internal/index.js';
import type { PrimaryInfo } from '../lease/index.js';

/**
 * Refusals between nodes (token, certificates, http vs https) do not heal by
 * retrying: an operator must act, so they are warnings even at startup.
 */
const OPERATOR_CODES = new Set(['ERR_STREAM_UNAUTHORIZED', 'ERR_STREAM_TLS']);

function needsOperator(err: unknown): boolean {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && OPERATOR_CODES.has(code);
}

/** Distinct reasons reported per outage at most (beyond that, debug only). */
const MAX_REASONS = 5;

/**
 * What a replica says about not being able to follow a primary: once per
 * outage, not once per attempt. Every attempt's failure goes to the debug
 * log; the first of an outage is a warning if a primary was being followed
 * (something broke), or information while the node has never caught up
 * since it started (replicas often start before their primary: normal).
 * A new kind of failure within the same outage is said once more, and the
 * end of the outage is said with how long it lasted.
 */
export class OutageLog {
  private since: number | null = null;
  private attempts = 0;
  private readonly reasons = new Set<string>();
  private followedBefore = false;
  /** Who was last caught up with (null: nobody, or this node was primary). */
  private following: string | null = null;

  constructor(private readonly log: Logger) {}

  /** One failed attempt; `what` names the step ("replication stream", "lease check"). */
  failed(what: string, err: unknown, primary: PrimaryInfo | null): void {
    const reason = describeError(err);
    const fields = primary === null ? {} : { primary: primary.hostname, url: primary.advertiseURL };
    this.attempts++;
    this.log.debug({ ...fields, attempt: this.attempts }, `${what} failed: ${reason}`);
    const key = `${what} ${reasonKey(err, reason)}`;
    const target = primary === null ? 'a primary' : `the primary ${primary.hostname} (${primary.advertiseURL})`;
    if (this.since === null) {
      this.since = Date.now();
      this.reasons.add(key);
      if (this.followedBefore || needsOperator(err)) {
        this.log.warn(fields, `lost ${target}: ${what} failed: ${reason}; retrying with backoff`);
      } else {
        this.log.info(fields, `waiting for ${target}: ${what} failed: ${reason}; retrying with backoff`);
      }
    } else if (!this.reasons.has(key) && this.reasons.size < MAX_REASONS) {
      this.reasons.add(key);
      this.log.info(fields, `still cannot follow ${target}: ${what} failed: ${reason}`);
    }
  }

  /** Caught up with `primary` (or became primary: null, said elsewhere). */
  recovered(primary: PrimaryInfo | null): void {
    if (primary !== null) {
      const who = `${primary.hostname} (${primary.advertiseURL})`;
      const fields = { primary: primary.hostname, url: primary.advertiseURL };
      if (this.since !== null) {
        const downMs = Date.now() - this.since;
        this.log.info(
          { ...fields, downMs, attempts: this.attempts },
          `following the primary ${who} ${this.followedBefore ? 'again after' : 'after waiting'} ${(downMs / 1000).toFixed(1)}s (${this.attempts} failed attempts)`,
        );
      } else if (who !== this.following) {
        this.log.info(fields, `following the primary ${who}`);
      }
      this.followedBefore = true;
    }
    this.following = primary === null ? null : `${primary.hostname} (${primary.advertiseURL})`;
    this.since = null;
    this.attempts = 0;
    this.reasons.clear();
  }
}

/** Failures of one kind share a key: the code when there is one, else the message without its numbers. */
function reasonKey(err: unknown, reason: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : reason.replace(/\d+/g, '#');
}
