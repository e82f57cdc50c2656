import { randomBytes } from 'node:crypto';
import { runProcess } from './processes.js';

/*
 * A private test network inside this machine: one Linux bridge in the root
 * namespace with its own /24 (the bridge holds .1, where etcd or the Consul
 * double listen), and one network namespace per node, joined to the bridge
 * by a veth pair, at .10, .11, ... Faults are nftables rules inside a
 * node's namespace: a partition drops everything but loopback, loss drops
 * a random share of packets. (This kernel has no netem qdisc; latency is
 * added by TcpProxy relays instead.) Every name starts with a random
 * prefix, and destroy() deletes the namespaces (taking their veths and
 * rules with them) and the bridge.
 *
 * Daemons run in a namespace through `nsenter --net=...`, which changes
 * only the network namespace: unlike `ip netns exec`, which also unshares
 * the mount namespace, their FUSE mounts stay visible to this process and
 * to the SQLite clients it starts.
 */

export class NetnsError extends Error {}

async function run(cmd: string, args: string[]): Promise<string> {
  const r = await runProcess(cmd, args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new NetnsError(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export class TestNet {
  private nsCreated: string[] = [];
  private bridgeCreated = false;

  private constructor(
    readonly prefix: string,
    readonly subnet: string,
    readonly size: number,
  ) {}

  /**
   * Creates the bridge and `size` namespaces. Fails with a NetnsError that
   * says what is missing (root, iproute2, netns support) rather than
   * letting a test pass without its network.
   */
  static async create(size: number): Promise<TestNet> {
    const prefix = `lf${randomBytes(2).toString('hex')}`;
    const used = await run('ip', ['-4', '-o', 'addr', 'show']).catch((err: unknown) => {
      throw new NetnsError(`network-namespace tests need iproute2 and root: ${String(err)}`);
    });
    let subnet = '';
    for (let i = 0; i < 50 && subnet === ''; i++) {
      const candidate = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]!}`;
      if (!used.includes(` ${candidate}.`)) subnet = candidate;
    }
    if (subnet === '') throw new NetnsError('no free 10.x.y.0/24 for the test bridge');
    const net = new TestNet(prefix, subnet, size);
    try {
      await net.setUp();
    } catch (err) {
      await net.destroy();
      throw new NetnsError(
        `cannot build the test network (needs root, iproute2, veth and bridge support, and nsenter): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return net;
  }

  get bridge(): string {
    return `${this.prefix}br`;
  }

  /** The bridge's address in the root namespace (.1). */
  get hostIP(): string {
    return `${this.subnet}.1`;
  }

  ns(i: number): string {
    return `${this.prefix}n${i}`;
  }

  ip(i: number): string {
    return `${this.subnet}.${10 + i}`;
  }

  /** Command prefix that runs a program in namespace i (network only). */
  wrap(i: number): string[] {
    return ['nsenter', `--net=/run/netns/${this.ns(i)}`];
  }

  private async setUp(): Promise<void> {
    await run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    this.bridgeCreated = true;
    await run('ip', ['addr', 'add', `${this.hostIP}/24`, 'dev', this.bridge]);
    await run('ip', ['link', 'set', this.bridge, 'up']);
    for (let i = 0; i < this.size; i++) {
      const ns = this.ns(i);
      const host = `${this.prefix}v${i}`;
      const peer = `${this.prefix}p${i}`;
      await run('ip', ['netns', 'add', ns]);
      this.nsCreated.push(ns);
      await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      await run('ip', ['link', 'set', peer, 'netns', ns]);
      await run('ip', ['link', 'set', host, 'master', this.bridge]);
      await run('ip', ['link', 'set', host, 'up']);
      await run('ip', ['-n', ns, 'addr', 'add', `${this.ip(i)}/24`, 'dev', peer]);
      await run('ip', ['-n', ns, 'link', 'set', peer, 'up']);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // One table per namespace for the faults; empty until a test adds one.
      await run('ip', ['netns', 'exec', ns, 'nft', 'add table inet fault']);
      await run('ip', ['netns', 'exec', ns, 'nft', 'add chain inet fault in { type filter hook input priority 0 ; }']);
      await run('ip', ['netns', 'exec', ns, 'nft', 'add chain inet fault out { type filter hook output priority 0 ; }']);
    }
  }

  /** Cuts namespace i off from everything but itself (the packets vanish; no resets). */
  async partition(i: number): Promise<void> {
    await this.clear(i);
    await this.nft(i, 'add rule inet fault in iifname != "lo" drop');
    await this.nft(i, 'add rule inet fault out oifname != "lo" drop');
  }

  /** Drops about `percent`% of packets in and out of namespace i, at random. */
  async loss(i: number, percent: number): Promise<void> {
    await this.clear(i);
    await this.nft(i, `add rule inet fault in iifname != "lo" numgen random mod 100 < ${percent} drop`);
    await this.nft(i, `add rule inet fault out oifname != "lo" numgen random mod 100 < ${percent} drop`);
  }

  /** Removes every fault of namespace i. */
  async clear(i: number): Promise<void> {
    await this.nft(i, 'flush chain inet fault in');
    await this.nft(i, 'flush chain inet fault out');
  }

  private async nft(i: number, rule: string): Promise<void> {
    await run('ip', ['netns', 'exec', this.ns(i), 'nft', rule]);
  }

  /** Deletes the namespaces (their veths and rules go with them) and the bridge. */
  async destroy(): Promise<void> {
    for (const ns of this.nsCreated.splice(0)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    for (let i = 0; i < this.size; i++) await run('ip', ['link', 'del', `${this.prefix}v${i}`]).catch(() => undefined);
    if (this.bridgeCreated) await run('ip', ['link', 'del', this.bridge]).catch(() => undefined);
    this.bridgeCreated = false;
  }
}
