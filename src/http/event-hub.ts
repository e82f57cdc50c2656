import type { Logger } from '../internal/index.js';
import type { DBChange, LeaseMonitor, Store } from '../store/index.js';
import type { PrimaryInfo } from '../lease/index.js';
import { encodeEvent, txEvent, type RoleEventData } from './event-format.js';

/** Events a subscriber may fall behind by before it is disconnected (LiteFS's channel size). */
export const EVENT_BUFFER_SIZE = 1024;

/** Where events come from: the store's changes and the lease monitor's role changes. */
export interface EventSource {
  store: Store;
  monitor: Pick<LeaseMonitor, 'isPrimary' | 'primary' | 'leaser' | 'on' | 'off'>;
}

export interface EventHubOptions {
  bufferSize?: number;
  logger?: Logger;
}

/** What a subscriber writes to: an HTTP/1.1 or HTTP/2 response. */
export interface EventSink {
  write(chunk: string): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * One `/events` client. Lines go straight to the response while it takes
 * them; once it pushes back (the socket is not draining) they wait in a
 * queue, and a queue longer than the buffer size means the client has
 * fallen behind for good.
 */
class Subscriber {
  private readonly queue: string[] = [];
  private blocked = false;
  closed = false;

  constructor(
    private readonly sink: EventSink,
    private readonly limit: number,
    private readonly overflow: () => void,
  ) {}

  send(line: string): void {
    if (this.closed) return;
    if (this.blocked) {
      if (this.queue.length >= this.limit) this.overflow();
      else this.queue.push(line);
      return;
    }
    this.write(line);
  }

  private write(text: string): void {
    if (this.sink.write(text)) return;
    this.blocked = true;
    this.sink.once('drain', this.drained);
  }

  private readonly drained = (): void => {
    this.blocked = false;
    if (this.closed || this.queue.length === 0) return;
    this.write(this.queue.splice(0).join(''));
  };

  stop(): void {
    this.closed = true;
    this.queue.length = 0;
    this.sink.off('drain', this.drained);
  }
}

/**
 * The event stream of one node (LiteFS §7.6): every subscriber first gets
 * `init`, then a `tx` line for each local commit, apply or drop and a
 * `primaryChange` line for each role change. Each event is encoded once
 * and fanned out. The hub listens to the store and the monitor only while
 * it has subscribers.
 */
export class EventHub {
  private readonly src: EventSource;
  private readonly limit: number;
  private readonly log: Logger | undefined;
  private readonly subs = new Set<Subscriber>();
  private listening = false;
  /** Subscribers disconnected because they fell too far behind. */
  slowDisconnects = 0;

  constructor(src: EventSource, opts: EventHubOptions = {}) {
    this.src = src;
    this.limit = opts.bufferSize ?? EVENT_BUFFER_SIZE;
    this.log = opts.logger;
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  /**
   * Streams events to `sink` until the client goes away or falls behind;
   * `abort` cuts a client that fell behind off (not a clean end: the
   * events it missed are gone).
   */
  serve(sink: EventSink, abort: () => void): Promise<void> {
    return new Promise((resolve) => {
      let sub: Subscriber | null = null;
      const done = (): void => {
        sink.off('close', done);
        if (sub === null || !this.subs.delete(sub)) return;
        sub.stop();
        this.updateListening();
        resolve();
      };
      sub = new Subscriber(sink, this.limit, () => {
        this.slowDisconnects++;
        this.log?.warn({ buffered: this.limit }, 'event stream subscriber fell behind; disconnecting');
        done();
        abort();
      });
      sink.once('close', done);
      this.subs.add(sub);
      this.updateListening();
      // Synchronously with joining: no event can slip in before init.
      sub.send(encodeEvent({ type: 'init', data: this.currentRole() }));
    });
  }

  private broadcast(line: string): void {
    for (const s of [...this.subs]) s.send(line);
  }

  private readonly onChange = (change: DBChange): void => {
    this.broadcast(encodeEvent(txEvent(change)));
  };

  private readonly onPrimaryChange = (e: { isPrimary: boolean; primary: PrimaryInfo | null }): void => {
    this.broadcast(encodeEvent({ type: 'primaryChange', data: this.role(e.isPrimary, e.primary) }));
  };

  private currentRole(): RoleEventData {
    return this.role(this.src.monitor.isPrimary, this.src.monitor.primary);
  }

  /** The primary's hostname: ours while we are it, the one we follow otherwise. */
  private role(isPrimary: boolean, primary: PrimaryInfo | null): RoleEventData {
    return { isPrimary, hostname: isPrimary ? this.src.monitor.leaser.hostname : (primary?.hostname ?? '') };
  }

  private updateListening(): void {
    const want = this.subs.size > 0;
    if (want === this.listening) return;
    this.listening = want;
    if (want) {
      this.src.store.on('change', this.onChange);
      this.src.monitor.on('primaryChange', this.onPrimaryChange);
    } else {
      this.src.store.off('change', this.onChange);
      this.src.monitor.off('primaryChange', this.onPrimaryChange);
    }
  }
}

const hubs = new WeakMap<Store, EventHub>();

/** The one hub of a store, shared by `/events` and `/metrics` of that node. */
export function eventHubFor(src: EventSource): EventHub {
  let hub = hubs.get(src.store);
  if (hub === undefined) {
    hub = new EventHub(src, { logger: src.store.log.child({ component: 'events' }) });
    hubs.set(src.store, hub);
  }
  return hub;
}
