import { parseHostPort, type Config } from './config/index.js';
import { LiteFS, MountLocks } from './fs/index.js';
import { checkMountpoint, mount, type FuseMount } from './fuse/index.js';
import {
  ApiServer,
  NodeProxyBackend,
  NodeSecurity,
  StreamServer,
  announceSecurity,
  apiRoutes,
  createProxyServer,
  runReplicaStream,
  type ProxyServer,
} from './http/index.js';
import { describeError, type Logger } from './internal/index.js';
import { createLeaser, type Leaser } from './lease/index.js';
import { LeaseMonitor, Store } from './store/index.js';

export interface NodeOptions {
  config: Config;
  logger: Logger;
  /**
   * Serve the FUSE mount at `config.fuse.dir` (default true). Without it
   * the node runs its store, lease loop and HTTP API only: what tests of
   * replication and the API need, without root.
   */
  mount?: boolean;
  /** Fail instead of clearing a dead FUSE mount at fuse.dir (a live one always fails). */
  skipUnmount?: boolean;
  /** Log every FUSE request. */
  fuseDebug?: boolean;
  /** A leaser other than the one the config describes (tests). */
  leaser?: Leaser;
  /** Stream heartbeat interval (default 1 s, as LiteFS). */
  heartbeatIntervalMs?: number;
  /** Start the lease loop in start() (default true); false leaves it to `node.monitor.start()` (tests watching the first role change). */
  startLeaseLoop?: boolean;
}

/**
 * One node: the store (recovered before anything can see it), the HTTP API
 * (replication stream, info, handoff), the lease monitor that decides
 * whether this node writes or follows, the FUSE mount that serves it and
 * the optional proxy. The one place that wires these together: `litefs
 * mount` and the tests use it alike.
 */
export class LiteFSNode {
  private _store: Store | null = null;
  private _monitor: LeaseMonitor | null = null;
  private _api: ApiServer | null = null;
  private _streams: StreamServer | null = null;
  private leaser: Leaser | null = null;
  private fs: LiteFS | null = null;
  private fuse: FuseMount | null = null;
  private mountLocks: MountLocks | null = null;
  private proxy: ProxyServer | null = null;
  private security: NodeSecurity | null = null;
  private readonly stopping = new AbortController();
  private readonly config: Config;
  private readonly log: Logger;

  constructor(private readonly opts: NodeOptions) {
    this.config = opts.config;
    this.log = opts.logger;
  }

  private get existingMount(): 'clear' | 'error' {
    return this.opts.skipUnmount === true ? 'error' : 'clear';
  }

  get store(): Store {
    if (this._store === null) throw new Error('the node is not started');
    return this._store;
  }

  get monitor(): LeaseMonitor {
    if (this._monitor === null) throw new Error('the node is not started');
    return this._monitor;
  }

  get streams(): StreamServer {
    if (this._streams === null) throw new Error('the node is not started');
    return this._streams;
  }

  /** The API's base URL on loopback (its real port, also when http.addr asked for port 0). */
  get url(): string {
    if (this._api === null) throw new Error('the node is not started');
    return `${this.security?.servesTLS === true ? 'https' : 'http'}://127.0.0.1:${this._api.address().port}`;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    log.info({ config: config.source, dataDir: config.data.dir, mountDir: config.fuse.dir }, 'starting');
    // Token and TLS for the API and for every call to another node; a bad
    // certificate or key stops startup here, before anything is opened.
    const security = await NodeSecurity.load(config.http);
    this.security = security;
    // A mount that cannot happen (no such directory, a live mount on it)
    // fails before the store creates or locks anything in the data directory.
    if (this.opts.mount ?? true) await checkMountpoint(config.fuse.dir, { existingMount: this.existingMount });
    const store = new Store({
      dataDir: config.data.dir,
      compress: config.data.compress,
      retentionMs: config.data.retentionMs,
      retentionMonitorIntervalMs: config.data.retentionMonitorIntervalMs,
      logger: log,
    });
    this._store = store;
    await store.open();
    log.info({ nodeID: store.nodeIDString }, 'store opened');

    const leaser = this.opts.leaser ?? createLeaser(config, { logger: log.child({ component: 'lease' }) });
    this.leaser = leaser;
    const streams = new StreamServer({
      store,
      logger: log,
      compress: config.data.compress,
      ...(this.opts.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: this.opts.heartbeatIntervalMs } : {}),
    });
    this._streams = streams;
    const monitor = new LeaseMonitor({
      store,
      leaser,
      logger: log,
      reconnectDelayMs: config.lease.reconnectDelayMs,
      connect: (primary, signal, hooks) =>
        runReplicaStream({
          store,
          primary,
          logger: log,
          signal,
          databases: config.lease.databases,
          onReady: hooks.onReady,
          onContact: hooks.onContact,
          onApplied: hooks.onApplied,
          onActivity: hooks.onActivity,
          security,
        }),
      prepareHandoff: (nodeID) => streams.prepareHandoff(nodeID),
      handoffTo: (nodeID, leaseID) => streams.handoff(nodeID, leaseID),
      drainReplicas: (settled, timeoutMs) => streams.drain(settled, timeoutMs),
    });
    this._monitor = monitor;

    const api = new ApiServer({
      host: config.http.host,
      port: config.http.port,
      logger: log,
      nodeID: store.nodeIDString,
      security,
      routes: apiRoutes({
        store,
        monitor,
        streams,
        mountDir: config.fuse.dir,
        proxyURL: advertisedProxyURL(config),
        security,
        maxImportSize: config.http.maxImportSize,
      }),
    });
    this._api = api;
    await api.listen();
    log.info({ addr: config.http.addr, port: api.address().port }, 'http: listening');
    announceSecurity(log, config.http, security);

    if (this.opts.mount ?? true) await this.mountFuse(store, monitor);
    if (this.opts.startLeaseLoop ?? true) monitor.start();
    if (config.proxy.enabled) this.startProxyWhenReady(store, monitor);
  }

  private async mountFuse(store: Store, monitor: LeaseMonitor): Promise<void> {
    const { config, log } = this;
    const fs = new LiteFS({
      store,
      logger: log,
      status: {
        primaryHostname: () => monitor.primary?.hostname ?? null,
        lagMs: () => monitor.lagMs(),
      },
    });
    this.fs = fs;
    this.fuse = await mount(config.fuse.dir, fs, {
      fsname: 'litefs',
      subtype: 'litefs',
      allowOther: config.fuse.allowOther,
      existingMount: this.existingMount,
      logger: log.child({ component: 'fuse' }, this.opts.fuseDebug === true ? { level: 'debug' } : undefined),
      debug: this.opts.fuseDebug ?? false,
    });
    fs.attach(this.fuse);
    this.mountLocks = new MountLocks(config.fuse.dir, log.child({ component: 'locks' }));
    store.clientLocks = this.mountLocks;
    monitor.on('primaryChange', () => fs.primaryChanged());
    log.info({ mountDir: config.fuse.dir }, 'mounted');
  }

  /**
   * As LiteFS: the proxy starts once the node is ready, so a replica never
   * serves reads from a database it has not caught up on yet.
   */
  private startProxyWhenReady(store: Store, monitor: LeaseMonitor): void {
    const { config, log } = this;
    const security = this.security ?? NodeSecurity.none();
    const backend = new NodeProxyBackend(store, monitor, config.proxy.addr, log, security);
    void monitor
      .waitReady(this.stopping.signal)
      .then(async (ready) => {
        if (!ready) return;
        const proxy = createProxyServer(config.proxy, backend, {
          logger: log.child({ component: 'proxy' }),
          primaryTLS: () => security.clientOptions(),
        });
        await proxy.listen();
        this.proxy = proxy;
        log.info({ addr: config.proxy.addr, target: config.proxy.target }, 'proxy: listening');
      })
      .catch((err: unknown) => log.error({ err }, `proxy failed to start: ${describeError(err)}`));
  }

  /**
   * Re-reads http.token and the http.tls files (SIGHUP). New connections,
   * served or dialled, use them; open ones finish with what they had. A
   * bad file throws and leaves the current material in place.
   */
  async reload(config: Config): Promise<void> {
    if (this.security === null) throw new Error('the node is not started');
    await this.security.reload(config.http);
    this.log.info({ ...this.security.summary }, 'http: reloaded the token and certificates');
  }

  /** Resolves when this node is primary or caught up with one (or the signal aborts). */
  waitReady(signal?: AbortSignal): Promise<boolean> {
    return this._monitor?.waitReady(signal) ?? Promise.resolve(false);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.proxy !== null) {
      await this.proxy.close().catch((err: unknown) => this.log.error({ err }, 'closing the proxy failed'));
      this.proxy = null;
    }
    // Release the lease first: a candidate can take over while we unmount.
    if (this._monitor !== null) {
      await this._monitor.stop().catch((err: unknown) => this.log.error({ err }, 'stopping the lease monitor failed'));
      this._monitor = null;
    }
    if (this._api !== null) {
      await this._api.close().catch((err: unknown) => this.log.error({ err }, 'closing the HTTP server failed'));
      this._api = null;
    }
    if (this.mountLocks !== null) {
      // The daemon's own descriptors on the mount go before the mount does.
      if (this._store !== null) this._store.clientLocks = null;
      await this.mountLocks.close();
      this.mountLocks = null;
    }
    if (this.fuse !== null) {
      await this.fuse.unmount().catch((err: unknown) => this.log.error({ err }, 'unmount failed'));
      this.fuse = null;
    }
    this.fs?.detach();
    if (this._store !== null) {
      await this._store.close().catch((err: unknown) => this.log.error({ err }, 'closing the store failed'));
      this._store = null;
    }
    if (this.leaser !== null) {
      await this.leaser.close().catch((err: unknown) => this.log.error({ err }, 'closing the leaser failed'));
      this.leaser = null;
    }
  }
}

/** How other nodes reach this node's proxy: proxy.addr's port on the advertised host. */
function advertisedProxyURL(config: Config): string | null {
  if (!config.proxy.enabled) return null;
  const addr = parseHostPort(config.proxy.addr);
  if (addr === undefined || addr.port === 0) return null;
  let host = addr.host;
  if (host === '' || host === '0.0.0.0' || host === '::') {
    try {
      host = new URL(config.lease.advertiseURL).hostname;
    } catch {
      host = config.lease.hostname;
    }
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
}
