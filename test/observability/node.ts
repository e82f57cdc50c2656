import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import type { StreamServer } from '../../src/http/index.js';
import { silentLogger } from '../../src/internal/log.js';
import { LiteFSNode } from '../../src/node.js';
import type { LeaseMonitor, Store } from '../../src/store/index.js';

/**
 * One node in this process without FUSE: the real node wiring
 * (src/node.ts) with `mount: false` — a real Store in a temporary
 * directory, the real stream server, a real LeaseMonitor over a static
 * lease, and the real API on 127.0.0.1:0. A primary becomes primary when
 * its monitor starts; a replica follows `primaryURL` with the real
 * replication client.
 */
export interface TestNode {
  store: Store;
  monitor: LeaseMonitor;
  streams: StreamServer;
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
  const replica = opts.primaryURL !== undefined;
  const lease = replica
    ? { type: 'static', candidate: false, hostname: opts.primaryHostname ?? 'primary', 'advertise-url': opts.primaryURL }
    : { type: 'static', candidate: true, hostname: opts.hostname, 'advertise-url': 'http://127.0.0.1:1' };
  const config = parseConfig(
    JSON.stringify({
      data: {
        dir: path.join(dataDir, 'data'),
        compress: false,
        retention: `${opts.retentionMs ?? 0}ms`,
        'retention-monitor-interval': '1h',
      },
      fuse: { dir: path.join(dataDir, 'unused-mount') },
      http: { addr: '127.0.0.1:0', 'snapshot-timeout': '10s' },
      lease: { ...lease, 'reconnect-delay': '100ms' },
    }),
    'test-node.yml',
  );
  const node = new LiteFSNode({ config, logger: silentLogger, mount: false, heartbeatIntervalMs: 200, startLeaseLoop: false });
  try {
    await node.start();
  } catch (err) {
    await node.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  let closed = false;
  return {
    store: node.store,
    monitor: node.monitor,
    streams: node.streams,
    dataDir,
    url: node.url,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await node.stop();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
