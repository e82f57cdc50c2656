import { basename } from 'node:path';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { LtxDirUsage, type DB, type DBStats, type LtxUsage } from '../store/index.js';
import type { ApiContext } from './api.js';
import { eventHubFor } from './event-hub.js';

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop, GC); default true. */
  processMetrics?: boolean;
}

type DBValue = (db: DB) => number;

/**
 * The node's Prometheus registry: LiteFS v0.5's metric names, computed from
 * the current state when scraped (positions, role, counts), with the
 * per-database counters read from DB.stats. One registry per node, never
 * prom-client's global one, so several nodes can share a process.
 */
export function createMetricsRegistry(ctx: ApiContext, opts: MetricsOptions = {}): Registry {
  const { store, monitor, streams } = ctx;
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  // The lag a replica saw when it applied each database's newest LTX file.
  const applyLagSeconds = new Map<string, number>();
  const usage = new Map<string, LtxDirUsage>();
  store.on('change', (c) => {
    applyLagSeconds.set(c.db, c.kind === 'commit' ? 0 : Math.max(0, Date.now() - c.timestamp) / 1000);
    usage.get(c.db)?.forget(basename(c.ltxPath));
  });

  new Gauge({
    name: 'litefs_db_count',
    help: 'Databases this node manages.',
    registers,
    collect() {
      this.set(store.databases().length);
    },
  });
  new Gauge({
    name: 'litefs_is_primary',
    help: '1 while this node is the primary, else 0.',
    registers,
    collect() {
      this.set(monitor.isPrimary ? 1 : 0);
    },
  });
  new Gauge({
    name: 'litefs_subscriber_count',
    help: 'Replicas streaming changes from this node.',
    registers,
    collect() {
      this.set(streams.subscriberCount);
    },
  });
  new Gauge({
    name: 'litefs_lag_seconds',
    help: 'Seconds since this replica last heard from the primary (0 on the primary and before the first sync).',
    registers,
    collect() {
      this.set((monitor.lagMs() ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'litefs_http_stream_count',
    help: 'Replication streams (/stream) currently being served.',
    registers,
    collect() {
      this.set(streams.subscriberCount);
    },
  });

  const perDB = (type: 'gauge' | 'counter', name: string, help: string, value: DBValue): void => {
    const collect = function (this: Gauge<'db'> | Counter<'db'>): void {
      this.reset();
      for (const db of store.databases()) {
        if (this instanceof Gauge) this.set({ db: db.name }, value(db));
        else this.inc({ db: db.name }, value(db));
      }
    };
    if (type === 'gauge') new Gauge({ name, help, labelNames: ['db'], registers, collect });
    else new Counter({ name, help, labelNames: ['db'], registers, collect });
  };
  const stat =
    (key: keyof DBStats): DBValue =>
    (db) =>
      db.stats[key];

  perDB('gauge', 'litefs_db_txid', 'TXID of the newest transaction of the database.', (db) => Number(db.pos.txid));
  perDB('counter', 'litefs_db_database_write_count', 'Writes SQLite clients made to the database file.', stat('databaseWrites'));
  perDB('counter', 'litefs_db_journal_write_count', 'Writes SQLite clients made to the rollback journal.', stat('journalWrites'));
  perDB('counter', 'litefs_db_wal_write_count', 'Writes to the WAL file (WAL mode is not supported yet).', stat('walWrites'));
  perDB('counter', 'litefs_db_shm_write_count', 'Writes to the shared-memory file (WAL mode is not supported yet).', stat('shmWrites'));
  perDB('counter', 'litefs_db_commit_count', 'Transactions recorded as LTX files on this node.', stat('commits'));
  perDB('gauge', 'litefs_db_ltx_reap_count', 'LTX files removed by retention.', stat('ltxReaped'));
  perDB(
    'gauge',
    'litefs_db_lag_seconds',
    'Seconds between writing the newest LTX file and applying it here (0 after a local commit).',
    (db) => applyLagSeconds.get(db.name) ?? 0,
  );

  // Both LTX gauges come from one directory pass per scrape (the registry
  // collects every metric concurrently).
  let scan: Promise<Map<string, LtxUsage>> | null = null;
  const ltxUsage = (): Promise<Map<string, LtxUsage>> => {
    scan ??= (async () => {
      const out = new Map<string, LtxUsage>();
      for (const db of store.databases()) {
        let u = usage.get(db.name);
        if (u === undefined || u.dir !== db.ltxDir) usage.set(db.name, (u = new LtxDirUsage(db.ltxDir)));
        out.set(db.name, await u.measure());
      }
      return out;
    })().finally(() => {
      scan = null;
    });
    return scan;
  };
  const ltxGauge = (name: string, help: string, pick: (u: LtxUsage) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['db'],
      registers,
      async collect() {
        const all = await ltxUsage();
        this.reset();
        for (const [db, u] of all) this.set({ db }, pick(u));
      },
    });
  };
  ltxGauge('litefs_db_ltx_count', 'LTX files kept on disk for the database.', (u) => u.count);
  ltxGauge('litefs_db_ltx_bytes', 'Bytes of the LTX files kept on disk for the database.', (u) => u.bytes);

  new Counter({
    name: 'litefs_http_frame_send_count',
    help: 'LTX frames sent to replicas: type "ltx" for incremental files, "ltx:snapshot" for snapshots.',
    labelNames: ['db', 'type'],
    registers,
    collect() {
      this.reset();
      for (const db of store.databases()) {
        this.inc({ db: db.name, type: 'ltx' }, db.stats.ltxFramesSent);
        this.inc({ db: db.name, type: 'ltx:snapshot' }, db.stats.snapshotFramesSent);
      }
    },
  });

  // Ours, not LiteFS's.
  const events = eventHubFor(ctx);
  new Gauge({
    name: 'litefs_ts_ready',
    help: '1 once this node is primary or has caught up with the primary, else 0.',
    registers,
    collect() {
      this.set(monitor.ready ? 1 : 0);
    },
  });
  new Gauge({
    name: 'litefs_ts_event_subscriber_count',
    help: 'Clients following /events.',
    registers,
    collect() {
      this.set(events.subscriberCount);
    },
  });
  new Counter({
    name: 'litefs_ts_event_slow_disconnect_count',
    help: '/events clients disconnected because they fell too far behind.',
    registers,
    collect() {
      this.reset();
      this.inc(events.slowDisconnects);
    },
  });
  return registry;
}
