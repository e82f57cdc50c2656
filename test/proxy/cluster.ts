import type { ProxyConfig } from '../../src/config/types.js';
import { createProxyServer, type ProxyServer, type ProxyServerOptions } from '../../src/http/proxy/index.js';
import { startApp, proxyConfig, type App, type AppHandler } from './apps.js';
import { FakeBackend } from './fake-backend.js';
import { CaptureLogger } from './util.js';

export interface Node {
  app: App;
  backend: FakeBackend;
  proxy: ProxyServer;
  url: string;
  log: CaptureLogger;
}

export interface ClusterOptions {
  config?: Partial<ProxyConfig>;
  options?: ProxyServerOptions;
  primaryHandler?: AppHandler;
  replicaHandler?: AppHandler;
  primaryTXID?: bigint;
  replicaTXID?: bigint;
}

/** Cleanup callbacks, run in reverse by the test file's afterEach. */
export type Cleanups = (() => Promise<void>)[];

export async function startNode(
  cleanups: Cleanups,
  name: string,
  backend: FakeBackend,
  opts: { config?: Partial<ProxyConfig>; options?: ProxyServerOptions; handler?: AppHandler } = {},
): Promise<Node> {
  const app = await startApp(name, opts.handler);
  cleanups.push(() => app.close());
  const log = new CaptureLogger();
  const proxy = createProxyServer(proxyConfig(app.target, opts.config), backend, { logger: log, ...opts.options });
  await proxy.listen();
  cleanups.push(() => proxy.close());
  return { app, backend, proxy, url: proxy.url(), log };
}

/** A primary and a replica, each a proxy in front of its own app, the replica pointing at the primary's proxy. */
export async function startCluster(cleanups: Cleanups, o: ClusterOptions = {}): Promise<{ primary: Node; replica: Node }> {
  const primary = await startNode(cleanups, 'primary', FakeBackend.primary({ db: o.primaryTXID ?? 5n }), {
    config: o.config,
    options: o.options,
    handler: o.primaryHandler,
  });
  const replica = await startNode(cleanups, 'replica', FakeBackend.replica(primary.url, { db: o.replicaTXID ?? 5n }), {
    config: o.config,
    options: o.options,
    handler: o.replicaHandler,
  });
  return { primary, replica };
}
