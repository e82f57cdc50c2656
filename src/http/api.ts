import { hostname as osHostname } from 'node:os';
import { request } from 'undici';
import { describeError } from '../internal/index.js';
import { isLeaseError, type Leaser } from '../lease/index.js';
import { formatChecksum, formatTXID } from '../ltx/index.js';
import type { LeaseMonitor, Store } from '../store/index.js';
import { eventsRoutes } from './events.js';
import { metricsRoutes } from './metrics.js';
import { sendJSON, sendText, type Route } from './server.js';
import { transferRoutes } from './transfer.js';
import type { StreamServer } from './stream-server.js';
import { explainConnectError, nodeAgent, NodeSecurity } from './auth/index.js';

export interface ApiContext {
  store: Store;
  monitor: LeaseMonitor;
  streams: StreamServer;
  /** The mount directory, reported by /info as LiteFS does. */
  mountDir: string;
  /** How other nodes reach this node's HTTP proxy (null: no proxy). */
  proxyURL: string | null;
  /** Token and TLS for calls to other nodes (/promote asks the primary); default none. */
  security?: NodeSecurity;
  /** http.max-import-size: largest POST /import body (null or absent: free space decides). */
  maxImportSize?: number | null;
}

/** JSON of GET /info: LiteFS's NodeInfo fields, plus what `litefs status` shows. */
export interface NodeInfo {
  clusterID: string;
  isPrimary: boolean;
  candidate: boolean;
  path: string;
  primary: { hostname: string } | null;
  nodeID: string;
  hostname: string;
  advertiseURL: string;
  ready: boolean;
  /** How far behind the primary this node is, in ms (0 on the primary); null from nodes that have never synced (older versions). */
  lagMs: number | null;
  subscribers: number;
  /** This node's HTTP proxy, for replicas forwarding writes here; null without one. */
  proxyURL: string | null;
  databases: { name: string; txid: string; checksum: string; pageSize: number; pageCount: number }[];
}

/**
 * How long /promote waits for the lease to arrive once the primary accepted
 * the handoff: the primary first finishes the commits in flight and this
 * node applies them, which for a large transaction on a loaded host takes
 * seconds.
 */
const PROMOTE_WAIT_MS = 30_000;

export function nodeInfo(ctx: ApiContext): NodeInfo {
  const { store, monitor } = ctx;
  const primary = monitor.isPrimary
    ? { hostname: monitor.leaser.hostname }
    : monitor.primary === null
      ? null
      : { hostname: monitor.primary.hostname };
  return {
    clusterID: '',
    isPrimary: monitor.isPrimary,
    candidate: monitor.leaser.candidate,
    path: ctx.mountDir,
    primary,
    nodeID: store.nodeIDString,
    hostname: ownHostname(monitor.leaser),
    advertiseURL: monitor.leaser.advertiseURL,
    ready: monitor.ready,
    lagMs: monitor.lagMs(),
    subscribers: ctx.streams.subscriberCount,
    proxyURL: ctx.proxyURL,
    databases: store
      .databases()
      .filter((d) => d.exists || d.pos.txid > 0n)
      .map((d) => ({
        name: d.name,
        txid: formatTXID(d.pos.txid),
        checksum: formatChecksum(d.pos.postApplyChecksum),
        pageSize: d.pageSize,
        pageCount: d.pageN,
      })),
  };
}

/**
 * This node's name. A static replica's lease.hostname names its primary (as
 * in LiteFS), so the node's own name there is the OS hostname.
 */
function ownHostname(leaser: Leaser): string {
  return leaser.type === 'static' && !leaser.candidate ? osHostname() : leaser.hostname;
}

/** The node API besides /stream: /info, /handoff, /promote. */
export function apiRoutes(ctx: ApiContext): Route[] {
  return [
    ...metricsRoutes(ctx),
    ...eventsRoutes(ctx),
    ...transferRoutes(ctx),
    { method: 'POST', path: '/stream', handler: ctx.streams.handle, http2Only: true },
    { method: 'GET', path: '/info', handler: (_req, res) => sendJSON(res, 200, nodeInfo(ctx)) },
    {
      method: 'POST',
      path: '/handoff',
      handler: async (_req, res, url) => {
        const raw = url.searchParams.get('nodeID') ?? '';
        if (!/^[0-9a-fA-F]{1,16}$/.test(raw)) return sendText(res, 400, 'nodeID must be a 16-digit hex node ID');
        const nodeID = BigInt(`0x${raw}`);
        const lease = ctx.monitor.currentLease;
        if (!ctx.monitor.isPrimary || lease === null) return sendText(res, 503, 'this node is not the primary');
        if (!ctx.streams.hasSubscriber(nodeID)) return sendText(res, 400, `node ${raw.toUpperCase()} is not a connected replica`);
        try {
          await lease.handoff(nodeID, { timeoutMs: 5000 });
        } catch (err) {
          if (isLeaseError(err, 'ERR_LEASE_HANDOFF_UNSUPPORTED')) return sendText(res, 409, 'static leases cannot be handed off');
          return sendText(res, 500, `handoff failed: ${describeError(err)}`);
        }
        sendText(res, 200, 'OK');
      },
    },
    {
      method: 'POST',
      path: '/promote',
      handler: async (_req, res) => {
        const { monitor, store } = ctx;
        if (!monitor.leaser.candidate) return sendText(res, 409, 'this node is not a lease candidate');
        if (monitor.isPrimary) return sendText(res, 200, 'already primary');
        const primary = monitor.primary;
        if (primary === null) return sendText(res, 500, 'no primary known to hand off from');
        const security = ctx.security ?? NodeSecurity.none();
        const agent = nodeAgent(security);
        try {
          const r = await request(new URL(`/handoff?nodeID=${store.nodeIDString}`, primary.advertiseURL), {
            method: 'POST',
            headers: security.headers(),
            dispatcher: agent,
            headersTimeout: 10_000,
            bodyTimeout: 10_000,
          });
          const text = await r.body.text();
          if (r.statusCode !== 200) return sendText(res, 502, `primary refused the handoff (${r.statusCode}): ${text.trim()}`);
        } catch (err) {
          return sendText(res, 502, `could not reach the primary: ${explainConnectError(err, primary.advertiseURL)}`);
        } finally {
          void agent.close();
        }
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            monitor.off('primaryChange', check);
            resolve();
          };
          const check = (): void => {
            if (monitor.isPrimary) done();
          };
          const timer = setTimeout(done, PROMOTE_WAIT_MS);
          monitor.on('primaryChange', check);
          check();
        });
        if (!monitor.isPrimary) return sendText(res, 504, `the handoff did not complete within ${PROMOTE_WAIT_MS / 1000} s`);
        sendText(res, 200, 'OK');
      },
    },
  ];
}
