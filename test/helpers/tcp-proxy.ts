import net from 'node:net';

/*
 * A TCP relay between a client and one server address for fault tests: it
 * forwards bytes both ways, optionally each chunk `delayMs` later, or holds
 * them ('blackhole': sockets stay open, nothing arrives, like a network
 * that silently drops every packet). This kernel has no netem qdisc, so
 * this is how tests add latency; the packet-level faults (partitions,
 * loss) are done with nftables in network namespaces (netns.ts).
 */

export type ProxyMode = 'pass' | 'blackhole';

export class TcpProxy {
  private mode: ProxyMode = 'pass';
  private delay = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly held: Array<() => void> = [];

  private constructor(
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Listens on `host` (default 127.0.0.1), a free port, relaying to `target`. */
  static async start(target: { host: string; port: number }, host = '127.0.0.1'): Promise<TcpProxy> {
    const ref: { proxy?: TcpProxy } = {};
    const server = net.createServer((client) => ref.proxy?.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    ref.proxy = new TcpProxy(server, host, (server.address() as net.AddressInfo).port);
    return ref.proxy;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** 'blackhole' holds every byte from now on; 'pass' releases what was held and forwards again. */
  setMode(mode: ProxyMode): void {
    this.mode = mode;
    if (mode === 'pass') for (const release of this.held.splice(0)) release();
  }

  /** Delays every chunk by `ms` in each direction (0: none): a round trip costs 2 × ms more. */
  setDelay(ms: number): void {
    this.delay = ms;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    this.relay(client, upstream);
    this.relay(upstream, client);
  }

  /**
   * Forwards in order, each chunk `delay` after it arrived (a link's
   * latency: chunks in flight together arrive together, not one delay
   * after another).
   */
  private relay(from: net.Socket, to: net.Socket): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const due = Date.now() + this.delay;
      chain = chain.then(async () => {
        if (this.mode === 'blackhole') await new Promise<void>((r) => this.held.push(r));
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => {
      chain = chain.then(() => {
        to.end();
      });
    });
  }
}
