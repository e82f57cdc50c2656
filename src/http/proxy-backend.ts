import { request } from 'undici';
import type { Logger } from '../internal/index.js';
import type { PrimaryInfo } from '../lease/index.js';
import type { LeaseMonitor, Store } from '../store/index.js';
import { ConditionWaiters, TXIDWaiters, primaryProxyURLFor, type ProxyBackend } from './proxy/index.js';
import { nodeAgent, NodeSecurity } from './auth/index.js';

/**
 * The proxy's view of this node, fed by store and lease events (never by
 * polling). The primary's proxy URL comes from the primary's own /info
 * (`proxyURL`), so nodes may listen on different proxy ports; until that
 * answer arrives (or if the primary does not say), the primary's API host
 * with this node's proxy port is assumed.
 */
export class NodeProxyBackend implements ProxyBackend {
  private readonly txids = new TXIDWaiters();
  private readonly primaryKnown = new ConditionWaiters();
  private proxyURL: string | null = null;
  private generation = 0;

  constructor(
    private readonly store: Store,
    private readonly monitor: LeaseMonitor,
    private readonly localProxyAddr: string,
    private readonly log: Logger,
    /** Token and TLS for reading the primary's /info. */
    private readonly security: NodeSecurity = NodeSecurity.none(),
  ) {
    store.on('change', (c) => this.txids.notify(c.db, c.pos.txid));
    monitor.on('primaryChange', ({ primary }) => this.onPrimary(primary));
    this.onPrimary(monitor.primary);
  }

  isPrimary(): boolean {
    return this.monitor.isPrimary;
  }

  primaryProxyURL(): string | null {
    return this.monitor.isPrimary ? null : this.proxyURL;
  }

  waitForPrimary(signal: AbortSignal): Promise<void> {
    return this.primaryKnown.wait(() => this.monitor.isPrimary || this.proxyURL !== null, signal);
  }

  txid(db: string): bigint | null {
    return this.store.db(db)?.pos.txid ?? null;
  }

  waitForTXID(db: string, target: bigint, signal: AbortSignal): Promise<boolean> {
    return this.txids.wait(db, target, () => this.txid(db), signal);
  }

  lagMs(): number {
    return this.monitor.lagMs() ?? Number.MAX_SAFE_INTEGER;
  }

  private onPrimary(primary: PrimaryInfo | null): void {
    const gen = ++this.generation;
    this.proxyURL = primary === null ? null : primaryProxyURLFor(primary, this.localProxyAddr);
    this.primaryKnown.notify();
    if (primary === null || primary.advertiseURL === '') return;
    void this.askPrimary(primary, gen);
  }

  private async askPrimary(primary: PrimaryInfo, gen: number): Promise<void> {
    const agent = nodeAgent(this.security);
    try {
      const res = await request(new URL('/info', primary.advertiseURL), {
        headers: this.security.headers(),
        dispatcher: agent,
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      const info = (await res.body.json()) as { proxyURL?: unknown };
      if (gen === this.generation && typeof info.proxyURL === 'string' && info.proxyURL !== '') {
        this.proxyURL = info.proxyURL;
        this.primaryKnown.notify();
      }
    } catch (err) {
      this.log.debug({ err, primary: primary.hostname }, "could not read the primary's proxy URL; assuming this node's proxy port");
    } finally {
      void agent.close();
    }
  }
}
