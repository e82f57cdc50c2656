import type { RequestContext } from './context.js';

/** How long an INTERRUPT for a request we have not seen yet waits before answering EAGAIN. */
const EARLY_INTERRUPT_MS = 10;
const MAX_EARLY = 1024;

/**
 * Requests being handled, by unique id, so INTERRUPT can find them.
 *
 * With several readers the INTERRUPT can be dispatched before the request
 * it names (both were read, by different reader threads, at about the
 * same time). Per the kernel's fuse documentation such an interrupt is kept for
 * a short while; if the request shows up it is interrupted at once,
 * otherwise the INTERRUPT is answered EAGAIN: the kernel then requeues it if
 * the request is still outstanding, or ignores the answer (the write fails
 * with ENOENT) if it was already answered.
 */
export class Inflight {
  private readonly pending = new Map<bigint, RequestContext>();
  private readonly early = new Map<bigint, NodeJS.Timeout>();

  constructor(private readonly answerEagain: (interruptUnique: bigint) => void) {}

  begin(ctx: RequestContext): void {
    this.pending.set(ctx.unique, ctx);
    const t = this.early.get(ctx.unique);
    if (t !== undefined) {
      clearTimeout(t);
      this.early.delete(ctx.unique);
      ctx.interrupt();
    }
  }

  end(unique: bigint): void {
    this.pending.delete(unique);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Returns true when the target was found and interrupted now. */
  interrupt(target: bigint, interruptUnique: bigint): boolean {
    const ctx = this.pending.get(target);
    if (ctx) {
      ctx.interrupt();
      return true;
    }
    if (this.early.has(target) || this.early.size >= MAX_EARLY) return false;
    const t = setTimeout(() => {
      this.early.delete(target);
      this.answerEagain(interruptUnique);
    }, EARLY_INTERRUPT_MS);
    t.unref();
    this.early.set(target, t);
    return false;
  }

  /** Session over: every handler still running sees its signal abort. */
  abortAll(): void {
    for (const t of this.early.values()) clearTimeout(t);
    this.early.clear();
    for (const ctx of this.pending.values()) ctx.interrupt();
  }
}
