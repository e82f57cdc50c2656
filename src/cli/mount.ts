import { loadConfig, type Config } from '../config/index.js';
import { mount, type FuseMount } from '../fuse/index.js';
import { LiteFS } from '../fs/filesystem.js';
import { describeError } from '../internal/errors.js';
import { createLogger, type Logger } from '../internal/log.js';
import { apiRoutes } from '../http/api.js';
import { ApiServer } from '../http/server.js';
import { runReplicaStream } from '../http/stream-client.js';
import { StreamServer } from '../http/stream-server.js';
import { NodeProxyBackend } from '../http/proxy-backend.js';
import { createProxyServer, type ProxyServer } from '../http/proxy/index.js';
import { parseHostPort } from '../config/index.js';
import { createLeaser } from '../lease/index.js';
import { LeaseMonitor } from '../store/lease-monitor.js';
import { Store } from '../store/store.js';
import { parseCommandArgs } from './args.js';
import { exitCodeOf, forwardSignals, startChild } from './child.js';
import type { Command } from './commands.js';

const USAGE = `usage: litefs mount [-config PATH] [-no-expand-env] [-skip-unmount] [-fuse.debug] [-debug] [-- CMD [ARGS...]]

Mounts the LiteFS filesystem described by the config file and serves it in
the foreground until SIGINT or SIGTERM, then unmounts cleanly.

With exec entries in the config, or a command after --, the application is
started once this node is ready (primary, or a replica caught up with the
primary): every entry but the last must exit 0 first (migrations); the last
runs for as long as the mount does, receives SIGINT/SIGTERM, and its exit
code becomes litefs's.

  -config PATH      config file (default: ./litefs.yml, ~/litefs.yml, /etc/litefs.yml)
  -no-expand-env    do not expand \${VAR} references in the config
  -skip-unmount     fail instead of clearing a stale mount at fuse.dir
  -fuse.debug       log every FUSE request
  -debug            debug logging
`;

export const mountCommand: Command = async (argv) => {
  const args = parseCommandArgs(
    'mount',
    USAGE,
    argv,
    {
      config: { type: 'string' },
      'no-expand-env': { type: 'boolean', default: false },
      'skip-unmount': { type: 'boolean', default: false },
      'fuse.debug': { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
    },
    {
      allowPositionals: true,
      check: (a) => {
        if (a.positionals.length > 0 && !argv.includes('--')) throw new Error(`unexpected argument ${a.positionals[0]!}`);
      },
    },
  );
  if (typeof args === 'number') return args;
  const config = await loadConfig(args.values.config ?? null, { expandEnv: !args.values['no-expand-env'] });
  const logger = createLogger({
    level: args.values.debug || config.log.debug ? 'debug' : config.log.level,
    format: config.log.format,
    timestamp: config.log.timestamp,
  });
  const daemon = new Daemon(config, logger, {
    skipUnmount: args.values['skip-unmount'],
    fuseDebug: args.values['fuse.debug'] || config.fuse.debug,
  });
  try {
    await daemon.start();
  } catch (err) {
    logger.error({ err }, `startup failed: ${describeError(err)}`);
    await daemon.stop();
    process.stderr.write(`litefs mount: ${describeError(err)}\n`);
    if (!config.exitOnError) {
      // exit-on-error: false keeps the process around for inspection.
      logger.info('exit-on-error is false: staying up until SIGINT/SIGTERM');
      await waitForSignal();
    }
    logger.flush();
    return 1;
  }
  const stop = new AbortController();
  const signalled = waitForSignal().then((sig) => {
    stop.abort();
    return sig;
  });
  const commands: ExecCommand[] =
    args.positionals.length > 0
      ? [{ cmd: args.positionals }]
      : config.exec.filter((e) => !e.ifCandidate || config.lease.candidate).map((e) => ({ cmd: e.cmd }));
  let code = 0;
  if (commands.length === 0) {
    logger.info({ signal: await signalled }, 'shutting down');
  } else {
    code = await runExec(daemon, commands, config.skipSync, stop.signal, logger);
    if (stop.signal.aborted) logger.info('shutting down after the application stopped');
  }
  await daemon.stop();
  logger.info('stopped');
  logger.flush();
  return code;
};

interface ExecCommand {
  cmd: string | string[];
}

/**
 * LiteFS's exec: wait until the node is ready, run every command but the
 * last to completion (stopping at the first failure), then supervise the
 * last one. Returns the exit code litefs should exit with.
 */
async function runExec(daemon: Daemon, commands: ExecCommand[], skipSync: boolean, signal: AbortSignal, log: Logger): Promise<number> {
  if (!skipSync) {
    log.info('waiting until this node is ready before starting the application');
    if (!(await daemon.waitReady(signal))) return 0;
  }
  for (const [i, c] of commands.entries()) {
    const last = i === commands.length - 1;
    log.info({ cmd: c.cmd }, last ? 'starting the application' : 'running');
    const child = startChild(c.cmd);
    const stopForwarding = forwardSignals(child);
    const code = await exitCodeOf(child);
    stopForwarding();
    if (last) {
      log.info({ code }, 'the application exited');
      return code;
    }
    if (code !== 0) {
      log.error({ cmd: c.cmd, code }, 'exec command failed; not starting the rest');
      return code;
    }
    if (signal.aborted) return 0;
  }
  return 0;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

interface DaemonOptions {
  skipUnmount: boolean;
  fuseDebug: boolean;
}

/**
 * One node: the store (recovered before anything can see it), the HTTP API
 * (replication stream, info, handoff), the lease monitor that decides
 * whether this node writes or follows, and the FUSE mount that serves it.
 */
export class Daemon {
  private store: Store | null = null;
  private fs: LiteFS | null = null;
  private fuse: FuseMount | null = null;
  private api: ApiServer | null = null;
  private monitor: LeaseMonitor | null = null;
  private proxy: ProxyServer | null = null;
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: Config,
    private readonly log: Logger & { flush(): void },
    private readonly opts: DaemonOptions,
  ) {}

  async start(): Promise<void> {
    const { config, log } = this;
    log.info({ config: config.source, dataDir: config.data.dir, mountDir: config.fuse.dir }, 'starting');
    const store = new Store({
      dataDir: config.data.dir,
      compress: config.data.compress,
      retentionMs: config.data.retentionMs,
      retentionMonitorIntervalMs: config.data.retentionMonitorIntervalMs,
      logger: log,
    });
    this.store = store;
    await store.open();
    log.info({ nodeID: store.nodeIDString }, 'store opened');

    const leaser = createLeaser(config, { logger: log.child({ component: 'lease' }) });
    const streams = new StreamServer({
      store,
      logger: log,
      compress: config.data.compress,
      snapshotTimeoutMs: config.http.snapshotTimeoutMs,
    });
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
          onActivity: hooks.onActivity,
        }),
      prepareHandoff: (nodeID) => streams.prepareHandoff(nodeID),
      handoffTo: (nodeID, leaseID) => streams.handoff(nodeID, leaseID),
    });
    this.monitor = monitor;

    this.api = new ApiServer({
      host: config.http.host,
      port: config.http.port,
      logger: log,
      nodeID: store.nodeIDString,
      routes: apiRoutes({ store, monitor, streams, mountDir: config.fuse.dir, proxyURL: advertisedProxyURL(config) }),
    });
    await this.api.listen();
    log.info({ addr: config.http.addr, port: this.api.address().port }, 'http: listening');

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
      existingMount: this.opts.skipUnmount ? 'error' : 'clear',
      logger: log.child({ component: 'fuse' }, this.opts.fuseDebug ? { level: 'debug' } : undefined),
      debug: this.opts.fuseDebug,
      // A thread parked in read(2) on /dev/fuse beats libuv-pool reads here
      // (about 1.5x the round trips, half the CPU: native-notes/fuse.md §8),
      // and leaves the pool to the file I/O the handlers do.
      reader: 'worker',
    });
    fs.attach(this.fuse);
    monitor.on('primaryChange', () => fs.primaryChanged());
    log.info({ mountDir: config.fuse.dir }, 'mounted');
    monitor.start();
    if (config.proxy.enabled) {
      // As LiteFS: the proxy starts once the node is ready, so a replica
      // never serves reads from a database it has not caught up on yet.
      const backend = new NodeProxyBackend(store, monitor, config.proxy.addr, log);
      void monitor
        .waitReady(this.stopping.signal)
        .then(async (ready) => {
          if (!ready) return;
          const proxy = createProxyServer(config.proxy, backend, { logger: log.child({ component: 'proxy' }) });
          await proxy.listen();
          this.proxy = proxy;
          log.info({ addr: config.proxy.addr, target: config.proxy.target }, 'proxy: listening');
        })
        .catch((err: unknown) => log.error({ err }, `proxy failed to start: ${describeError(err)}`));
    }
  }

  /** Resolves when this node is primary or caught up with one (or the signal aborts). */
  waitReady(signal?: AbortSignal): Promise<boolean> {
    return this.monitor?.waitReady(signal) ?? Promise.resolve(false);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.proxy !== null) {
      await this.proxy.close().catch((err: unknown) => this.log.error({ err }, 'closing the proxy failed'));
      this.proxy = null;
    }
    // Release the lease first: a candidate can take over while we unmount.
    if (this.monitor !== null) {
      await this.monitor.stop().catch((err: unknown) => this.log.error({ err }, 'stopping the lease monitor failed'));
      this.monitor = null;
    }
    if (this.api !== null) {
      await this.api.close().catch((err: unknown) => this.log.error({ err }, 'closing the HTTP server failed'));
      this.api = null;
    }
    if (this.fuse !== null) {
      await this.fuse.unmount().catch((err: unknown) => this.log.error({ err }, 'unmount failed'));
      this.fuse = null;
    }
    this.fs?.detach();
    if (this.store !== null) {
      await this.store.close().catch((err: unknown) => this.log.error({ err }, 'closing the store failed'));
      this.store = null;
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
