/** Counters a session keeps; read them with `FuseSession.stats()`. */
export interface SessionStats {
  /** Messages read from the device. */
  requests: number;
  /** Replies and notifications the kernel accepted. */
  replies: number;
  /** Replies answered with an errno (including ENOSYS). */
  errorReplies: number;
  /** Replies the kernel no longer wanted (ENOENT on write: the request was interrupted or aborted). */
  staleReplies: number;
  /** INTERRUPT requests received. */
  interrupts: number;
  /** Messages that could not be decoded. */
  malformed: number;
  /** Unexpected handler failures answered EIO (each distinct one is logged once). */
  unexpectedErrors: number;
  notifications: number;
  /** Notifications the kernel answered ENOENT (it had nothing cached for that node or name). */
  notificationsNotCached: number;
  /** Requests whose handler has not replied yet. */
  inflight: number;
  /** Node ids the kernel holds lookup references to. */
  knownNodes: number;
}

export function emptyStats(): SessionStats {
  return {
    requests: 0,
    replies: 0,
    errorReplies: 0,
    staleReplies: 0,
    interrupts: 0,
    malformed: 0,
    unexpectedErrors: 0,
    notifications: 0,
    notificationsNotCached: 0,
    inflight: 0,
    knownNodes: 0,
  };
}
