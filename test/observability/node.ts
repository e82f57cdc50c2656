import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { apiRoutes } from '../../src/http/api.js';
import { ApiServer } from '../../src/http/server.js';
import { runReplicaStream } from '../../src/http/stream-client.js';
import { StreamServer } from '../../src/http/stream-server.js';
import { silentLogger } from '../../src/internal/log.js';
import { StaticLeaser } from '../../src/lease/static.js';
import { LeaseMonitor } from '../../src/store/lease-monitor.js';
import { Store } from '../../src/store/store.js';

/**
 * One node in this process without FUSE: a real Store in a temporary
 * directory, the real stream server, a real LeaseMonitor over a static
 * lease, and the real ApiServer on 127.0.0.1:0 serving apiRoutes().
 * A primary becomes primary when its monitor starts; a replica follows
 * `primaryURL` with the real replication client.
 */
export interface TestNode {
  store: Store;
  monitor: LeaseMonitor;
  streams: StreamServer;
  api: ApiServer;
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

export interface TestNodeOptions {
  hostname: string;
  /** Absent: this node is the (static) primary. */
  primaryURL?: string;
  /** Hostname of the primary a replica follows. */
  primaryHostname?: string;
  retentionMs?: number;
}

export async function createTestNode(opts: TestNodeOptions): Promise<TestNode> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'litefs-obs-'));
  const store = new Store({ dataDir, compress: false, retentionMs: opts.retentionMs ?? 0, retentionMonitorIntervalMs: 0 });
  await store.open();
  const replica = opts.primaryURL !== undefined;
  const leaser = new StaticLeaser(
    replica
      ? { candidate: false, hostname: opts.primaryHostname ?? 'primary', advertiseURL: opts.primaryURL! }
      : { candidate: true, hostname: opts.hostname, advertiseURL: 'http://127.0.0.1:1' },
  );
  const streams = new StreamServer({ store, logger: silentLogger, compress: false, snapshotTimeoutMs: 10_000, heartbeatIntervalMs: 200 });
  const monitor = new LeaseMonitor({
    store,
    leaser,
    logger: silentLogger,
    reconnectDelayMs: 100,
    connect: (primary, signal, hooks) =>
      runReplicaStream({ store, primary, logger: silentLogger, signal, onReady: hooks.onReady, onContact: hooks.onContact }),
    prepareHandoff: (nodeID) => streams.prepareHandoff(nodeID),
    handoffTo: (nodeID, leaseID) => streams.handoff(nodeID, leaseID),
  });
  const api = new ApiServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    nodeID: store.nodeIDString,
    routes: apiRoutes({ store, monitor, streams, mountDir: '/litefs', proxyURL: null }),
  });
  await api.listen();
  let closed = false;
  return {
    store,
    monitor,
    streams,
    api,
    dataDir,
    url: `http://127.0.0.1:${api.address().port}`,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await monitor.stop();
        await api.close();
        await store.close();
        await leaser.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
