/** Local time in ms on a clock that never jumps (NTP steps do not move it). */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface ReplicaLagOptions {
  /**
   * A caught-up stream is trusted to be current for this long after the
   * primary was last heard from: the primary sends a heartbeat every
   * second while idle, so silence longer than this means a stall.
   */
  silenceAllowanceMs?: number;
  /** Heartbeats whose clock offsets are kept (about one a second). */
  offsetWindow?: number;
  now?: () => number;
}

const DEFAULT_SILENCE_ALLOWANCE_MS = 1500;
const DEFAULT_OFFSET_WINDOW = 60;

/**
 * How far behind the primary a replica is, in ms: about 0 while it is
 * caught up on a healthy stream, growing when the stream stalls, breaks,
 * or brings transactions later than the primary committed them.
 *
 * The primary's clock is never compared with ours directly. Each
 * HEARTBEAT carries the primary's time; (our receive time − its time) is
 * the clock offset plus the one-way delay, and its minimum over recent
 * heartbeats is the offset plus the smallest delay. Measured against that,
 * a heartbeat's own excess is the stream's current delay (~0 when
 * healthy), and an LTX file applied at local time t with the primary's
 * commit timestamp c was behind by t − (c + offset): skew between hosts
 * cancels out.
 *
 * Our primary sends a heartbeat only when it has sent everything, so
 * silence is good news until the next heartbeat is overdue: until then the
 * lag is the delay last measured; after that, the delay plus the whole
 * silence, since nothing newer than the last frame can be vouched for. A
 * replica that has not caught up on its current stream (connecting,
 * receiving a snapshot, disconnected) counts the same way from the last
 * time it was known current (caught up, or primary itself), or from when
 * it started.
 */
export class ReplicaLag {
  private readonly now: () => number;
  private readonly allowanceMs: number;
  private readonly window: number;
  private readonly startedAt: number;
  /** Local time of the last proof that we were current (null: never, since start). */
  private heardAt: number | null = null;
  /** Delay measured at `heardAt`. */
  private delayMs = 0;
  /** The current stream has caught up (READY) and not ended. */
  private caughtUp = false;
  private offsets: number[] = [];

  constructor(opts: ReplicaLagOptions = {}) {
    this.now = opts.now ?? monotonicNow;
    this.allowanceMs = opts.silenceAllowanceMs ?? DEFAULT_SILENCE_ALLOWANCE_MS;
    this.window = opts.offsetWindow ?? DEFAULT_OFFSET_WINDOW;
    this.startedAt = this.now();
  }

  /** A new stream to a primary (perhaps another host, another clock). */
  connecting(): void {
    this.caughtUp = false;
    this.offsets = [];
  }

  /** READY: the primary has sent everything it had. */
  ready(): void {
    this.caughtUp = true;
    this.heardAt = this.now();
    this.delayMs = 0;
  }

  heartbeat(primaryTimeMs: number): void {
    const t = this.now();
    const sample = t - primaryTimeMs;
    this.offsets.push(sample);
    if (this.offsets.length > this.window) this.offsets.shift();
    if (!this.caughtUp) return;
    this.heardAt = t;
    this.delayMs = Math.max(0, sample - Math.min(...this.offsets));
  }

  /** An LTX file with the primary's commit timestamp was applied. */
  applied(primaryTimeMs: number): void {
    if (!this.caughtUp) return;
    const t = this.now();
    this.heardAt = t;
    // No heartbeat yet on this stream: no offset to measure against.
    if (this.offsets.length > 0) this.delayMs = Math.max(0, t - primaryTimeMs - Math.min(...this.offsets));
  }

  /** This node stopped being the primary: its data was current until now. */
  steppedDown(): void {
    this.caughtUp = false;
    this.heardAt = this.now();
    this.delayMs = 0;
  }

  /** The stream ended, however. */
  disconnected(): void {
    this.caughtUp = false;
  }

  get isCaughtUp(): boolean {
    return this.caughtUp;
  }

  lagMs(): number {
    const t = this.now();
    if (this.heardAt === null) return Math.max(0, t - this.startedAt);
    const silence = Math.max(0, t - this.heardAt);
    if (this.caughtUp && silence <= this.allowanceMs) return this.delayMs;
    return this.delayMs + silence;
  }
}
