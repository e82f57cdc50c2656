import { opcodeName } from '../protocol/opcodes.js';
import type { InHeader } from '../protocol/decode.js';

/**
 * Who is asking, and whether they still want the answer. One per request.
 * The AbortSignal is created on first use: most handlers never look at it,
 * and an AbortController per request would cost more than the rest of the
 * dispatch.
 */
export class RequestContext {
  readonly unique: bigint;
  readonly opcode: number;
  /** The node the request is about (the parent directory for name operations). */
  readonly nodeid: bigint;
  readonly uid: number;
  readonly gid: number;
  /** Thread group id of the caller; 0 for requests the kernel makes on its own (FORGET, readahead write-back, ...). */
  readonly pid: number;
  private controller: AbortController | undefined;
  private interruptedFlag = false;

  constructor(h: InHeader) {
    this.unique = h.unique;
    this.opcode = h.opcode;
    this.nodeid = h.nodeid;
    this.uid = h.uid;
    this.gid = h.gid;
    this.pid = h.pid;
  }

  get opName(): string {
    return opcodeName(this.opcode);
  }

  /** True once the kernel sent INTERRUPT for this request (or the session ended). */
  get interrupted(): boolean {
    return this.interruptedFlag;
  }

  /** Aborted when the kernel interrupts the request or the session ends. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.interruptedFlag) this.controller.abort(interruptReason(this));
    }
    return this.controller.signal;
  }

  /** @internal */
  interrupt(): void {
    if (this.interruptedFlag) return;
    this.interruptedFlag = true;
    this.controller?.abort(interruptReason(this));
  }
}

function interruptReason(ctx: RequestContext): Error {
  const err = new Error(`FUSE request ${ctx.opName} #${ctx.unique} was interrupted`);
  err.name = 'AbortError';
  return err;
}
