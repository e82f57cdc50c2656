import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { NodeSecurity, nodeAgent } from '../../src/http/index.js';
import { checksumDatabaseFile, formatChecksum } from '../../src/ltx/index.js';
import { LiteFSNode, type StartOptions } from './daemon.js';
import { runSqlite3 } from './sqlite-clients.js';
import { spawnInteractive, type InteractiveChild } from './processes.js';

/*
 * A LiteFS cluster on loopback: N real `litefs mount` daemons, each with its
 * own free port (http.addr and advertise-url), data and mount directories,
 * leased either statically (node 0 is the primary) or through a Consul HTTP
 * API (the ConsulTestDouble). Tests observe nodes the way an operator or an
 * app would: GET /info, the mount's `.primary`, `.lag` and `<db>-pos`, and
 * SQLite clients in child processes.
 */

export type LeaseSpec =
  | { type: 'static' }
  | {
      type: 'etcd';
      /** Client URLs of the etcd members. */
      endpoints: string[];
      key: string;
      /** Go duration, whole seconds; default 2s (etcd's minimum). */
      ttl?: string;
    }
  | {
      type: 'consul';
      url: string;
      key: string;
      /** Go duration; default 10s (Consul's minimum). */
      ttl?: string;
      /** Go duration; default 1s. */
      lockDelay?: string;
    };

export interface ClusterNodeSpec {
  /** lease.candidate; static: default true for node 0 only, consul and etcd: default true. */
  candidate?: boolean;
  /** Address the node listens on and advertises (default 127.0.0.1; a netns test's own address). */
  host?: string;
  /** Command prefix the daemon runs under (see NodeOptions.wrap), e.g. nsenter into a netns. */
  wrap?: string[];
  /** static replicas: the primary's URL they follow instead of node 0's own (e.g. through a relay). */
  primaryURL?: string;
  /** etcd: this node's endpoints instead of the lease spec's (e.g. through a delaying relay). */
  etcdEndpoints?: string[];
  retention?: string;
  retentionMonitorInterval?: string;
}

export interface ClusterOptions {
  size?: number;
  lease: LeaseSpec;
  /** Per-node overrides, by index. */
  nodes?: ClusterNodeSpec[];
  /** Node 0's API port, chosen by the caller (relays to it must exist first). */
  primaryPort?: number;
  compress?: boolean;
  retention?: string;
  retentionMonitorInterval?: string;
  /** lease.reconnect-delay (Go duration). */
  reconnectDelay?: string;
  /** Start daemons with -debug (LTX applies are logged at debug level). */
  debug?: boolean;
  /** http.token and http.tls of every node (and what the tests present); none by default. */
  security?: ClusterSecurity;
}

export interface ClusterSecurity {
  token: string;
  tls?: { cert: string; key: string; ca: string; clientAuth: boolean };
}

/** An HTTP client for a cluster's nodes: their CA, a client certificate, the token. */
export async function clusterClient(sec: ClusterSecurity | undefined): Promise<NodeSecurity> {
  if (sec === undefined) return NodeSecurity.none();
  return NodeSecurity.load({ token: sec.token, tls: sec.tls === undefined ? null : { ...sec.tls, clientAuth: false } });
}

/** GET `url` with `client`'s TLS settings and token (HTTP/1.1, one connection). */
export async function getWith(client: NodeSecurity, url: string, timeoutMs = 2000): Promise<{ status: number; text: string }> {
  const agent = nodeAgent(client);
  try {
    const r = await request(url, { dispatcher: agent, headers: client.headers(), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    return { status: r.statusCode, text: await r.body.text() };
  } finally {
    await agent.close();
  }
}

/** The parts of GET /info the tests use. */
export interface InfoJSON {
  isPrimary: boolean;
  candidate: boolean;
  nodeID: string;
  hostname: string;
  advertiseURL: string;
  ready: boolean;
  lagMs: number | null;
  primary: { hostname: string } | null;
  subscribers: number;
  databases: { name: string; txid: string; checksum: string; pageSize: number; pageCount: number }[];
}

/** Allocates a free loopback port (bind :0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` (every `everyMs`) until it returns non-undefined; throws naming `what` after `timeoutMs`. */
export async function poll<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (let i = 0; i < 1_000_000; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) break;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
}

export class ClusterNode {
  constructor(
    readonly index: number,
    readonly name: string,
    readonly port: number,
    readonly node: LiteFSNode,
    private readonly render: (candidate: boolean) => string,
    private _candidate: boolean,
    private readonly cluster: { client: NodeSecurity; opts: ClusterOptions },
    readonly host = '127.0.0.1',
  ) {}

  get url(): string {
    return `${this.cluster.opts.security?.tls !== undefined ? 'https' : 'http'}://${this.host}:${this.port}`;
  }

  get candidate(): boolean {
    return this._candidate;
  }

  get running(): boolean {
    return this.node.running;
  }

  get pid(): number | undefined {
    return this.node.pid;
  }

  /** Path of a file in this node's mount. */
  path(file: string): string {
    return this.node.path(file);
  }

  start(opts?: StartOptions): Promise<void> {
    return this.node.start(opts);
  }

  /** Rewrites litefs.yml with another candidate flag (takes effect at the next start). */
  async setCandidate(candidate: boolean): Promise<void> {
    this._candidate = candidate;
    await writeFile(this.node.configPath, this.render(candidate));
  }

  /** GET /info (HTTP/1.1) with a time limit, with the cluster's credentials. */
  async info(timeoutMs = 2000): Promise<InfoJSON> {
    if (this.cluster.opts.security === undefined) {
      const r = await fetch(`${this.url}/info`, { signal: AbortSignal.timeout(timeoutMs) });
      if (r.status !== 200) throw new Error(`${this.name} /info answered ${r.status}`);
      return (await r.json()) as InfoJSON;
    }
    const r = await getWith(this.cluster.client, `${this.url}/info`, timeoutMs);
    if (r.status !== 200) throw new Error(`${this.name} /info answered ${r.status}: ${r.text}`);
    return JSON.parse(r.text) as InfoJSON;
  }

  /** Rewrites litefs.yml from the cluster's current options (e.g. new credentials). */
  async rewriteConfig(): Promise<void> {
    await writeFile(this.node.configPath, this.render(this._candidate));
  }

  /** This node's position of `db` from /info: "txid/checksum" (16 hex each), or null. */
  async position(db: string): Promise<string | null> {
    const d = (await this.info()).databases.find((x) => x.name === db);
    return d === undefined ? null : `${d.txid}/${d.checksum}`;
  }

  /** `<db>-pos` read through the mount (as an app sees it). */
  async posFile(db: string): Promise<string> {
    return (await readFile(this.path(`${db}-pos`), 'utf8')).trim();
  }

  /** `.primary` through the mount: the primary's hostname, or null when absent. */
  async primaryFile(): Promise<string | null> {
    try {
      return (await readFile(this.path('.primary'), 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** `.lag` through the mount, in ms. */
  async lagFile(): Promise<number> {
    const text = await readFile(this.path('.lag'), 'utf8');
    const m = /^\+(\d+)\n$/.exec(text);
    if (m === null) throw new Error(`${this.name}: .lag holds ${JSON.stringify(text)}`);
    return Number(m[1]);
  }

  /** Database checksum of the underlying file in the data directory (never the mount). */
  async fileChecksum(db: string): Promise<string> {
    return formatChecksum(await checksumDatabaseFile(this.node.databaseFile(db)));
  }

  /** Runs SQL with the sqlite3 CLI against `<mount>/<db>` (busy timeout 5 s). */
  sql(db: string, sql: string, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runSqlite3(this.path(db), sql, { busyTimeoutMs: 5000, timeoutMs });
  }

  /** JSON log lines of every run whose `msg` matches. */
  logged(msg: RegExp, allRuns = true): Record<string, unknown>[] {
    return this.node.logLines(allRuns).filter((l) => typeof l['msg'] === 'string' && msg.test(l['msg']));
  }
}

export class Cluster {
  /** What the tests present to the nodes; see setSecurity. */
  client: NodeSecurity = NodeSecurity.none();
  readonly nodes: ClusterNode[] = [];

  private constructor(readonly opts: ClusterOptions) {}

  /**
   * New credentials for the whole cluster: every litefs.yml is rewritten
   * (running daemons pick them up on SIGHUP) and the tests' client uses them.
   */
  async setSecurity(security: ClusterSecurity): Promise<void> {
    this.opts.security = security;
    this.client = await clusterClient(security);
    for (const n of this.nodes) await n.rewriteConfig();
  }

  /** Creates the nodes' directories and configs; starts nothing. */
  static async create(opts: ClusterOptions): Promise<Cluster> {
    const size = opts.size ?? 3;
    const ports: number[] = opts.primaryPort === undefined ? [] : [opts.primaryPort];
    while (ports.length < size) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const scheme = opts.security?.tls !== undefined ? 'https' : 'http';
    const primaryURL = `${scheme}://${opts.nodes?.[0]?.host ?? '127.0.0.1'}:${ports[0]!}`;
    const cluster = new Cluster(opts);
    cluster.client = await clusterClient(opts.security);
    const nodes = cluster.nodes;
    for (let i = 0; i < size; i++) {
      const name = `node${i}`;
      const spec = opts.nodes?.[i] ?? {};
      const candidate = spec.candidate ?? (opts.lease.type === 'static' ? i === 0 : true);
      const port = ports[i]!;
      let dirs: { dataDir: string; mountDir: string } | null = null;
      const render = (cand: boolean): string => {
        if (dirs === null) throw new Error('directories not known yet');
        return renderConfig({ opts, spec, dirs, name, port, candidate: cand, primaryURL });
      };
      const node = await LiteFSNode.create({
        prefix: `litefs-cluster-${name}-`,
        args: opts.debug ? ['-debug'] : [],
        ...(spec.wrap !== undefined ? { wrap: spec.wrap } : {}),
        configText: (d) => {
          dirs = d;
          return render(candidate);
        },
      });
      nodes.push(new ClusterNode(i, name, port, node, render, candidate, cluster, spec.host));
    }
    return cluster;
  }

  node(i: number): ClusterNode {
    const n = this.nodes[i];
    if (n === undefined) throw new Error(`no node ${i}`);
    return n;
  }

  /** Starts nodes (all by default) one after the other; each waits for its mount. */
  async start(indices: number[] = this.nodes.map((n) => n.index)): Promise<void> {
    for (const i of indices) await this.node(i).start();
  }

  get running(): ClusterNode[] {
    return this.nodes.filter((n) => n.running);
  }

  /**
   * Waits until exactly one running node (of `among`) reports isPrimary and
   * every other running node of `among` is a replica following it (or, with
   * `replicasFollow: false`, at least not primary).
   */
  async findPrimary(opts: { timeoutMs?: number; among?: ClusterNode[]; replicasFollow?: boolean } = {}): Promise<ClusterNode> {
    const among = () => (opts.among ?? this.nodes).filter((n) => n.running);
    return poll(
      async () => {
        const infos = await Promise.all(among().map(async (n) => ({ n, info: await n.info().catch(() => null) })));
        const primaries = infos.filter((x) => x.info?.isPrimary === true);
        if (primaries.length !== 1) return undefined;
        const p = primaries[0]!;
        if (opts.replicasFollow ?? true) {
          const ok = infos.every((x) => x.n === p.n || (x.info !== null && x.info.primary?.hostname === p.info!.hostname && x.info.ready));
          if (!ok) return undefined;
        }
        return p.n;
      },
      'one primary with every running node following it',
      opts.timeoutMs ?? 30_000,
      100,
    );
  }

  /**
   * Waits until every running node (or `nodes`) reports the same position
   * for `db` as the primary `primary` does; returns it ("txid/checksum").
   */
  async waitConverged(db: string, opts: { primary?: ClusterNode; nodes?: ClusterNode[]; timeoutMs?: number } = {}): Promise<string> {
    const nodes = (opts.nodes ?? this.nodes).filter((n) => n.running);
    return poll(
      async () => {
        const primary = opts.primary ?? (await this.findPrimary({ timeoutMs: 5000, replicasFollow: false }));
        const want = await primary.position(db);
        if (want === null) return undefined;
        for (const n of nodes) if ((await n.position(db)) !== want) return undefined;
        // The primary may have moved on while we looked.
        return (await primary.position(db)) === want ? want : undefined;
      },
      `${db} to converge on ${nodes.map((n) => n.name).join(', ')}`,
      opts.timeoutMs ?? 30_000,
      50,
    );
  }

  /** Stops every running daemon cleanly (SIGTERM), replicas first. */
  async stopAll(): Promise<void> {
    const infos = await Promise.all(
      this.running.map(async (n) => ({ n, primary: (await n.info().catch(() => null))?.isPrimary === true })),
    );
    for (const { n } of infos.filter((x) => !x.primary)) await n.node.stop();
    for (const { n } of infos.filter((x) => x.primary)) await n.node.stop();
  }

  /** Kills whatever still runs and removes mounts and directories. */
  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.node.destroy();
  }
}

function renderConfig(a: {
  opts: ClusterOptions;
  spec: ClusterNodeSpec;
  dirs: { dataDir: string; mountDir: string };
  name: string;
  port: number;
  candidate: boolean;
  primaryURL: string;
}): string {
  const { opts, spec, dirs } = a;
  const retention = spec.retention ?? opts.retention;
  const monitor = spec.retentionMonitorInterval ?? opts.retentionMonitorInterval;
  const lines = [
    'data:',
    `  dir: ${JSON.stringify(dirs.dataDir)}`,
    `  compress: ${opts.compress ?? true}`,
    ...(retention === undefined ? [] : [`  retention: ${JSON.stringify(retention)}`]),
    ...(monitor === undefined ? [] : [`  retention-monitor-interval: ${JSON.stringify(monitor)}`]),
    'fuse:',
    `  dir: ${JSON.stringify(dirs.mountDir)}`,
    'http:',
    `  addr: "${a.spec.host ?? '127.0.0.1'}:${a.port}"`,
    ...securityLines(opts.security),
    'lease:',
    `  type: ${opts.lease.type}`,
    `  candidate: ${a.candidate}`,
    ...(opts.reconnectDelay === undefined ? [] : [`  reconnect-delay: ${JSON.stringify(opts.reconnectDelay)}`]),
  ];
  if (opts.lease.type === 'static') {
    // Static: every node names the primary (node 0); the primary names itself.
    lines.push(
      `  hostname: ${JSON.stringify(a.candidate ? a.name : 'node0')}`,
      `  advertise-url: ${JSON.stringify(a.candidate ? a.primaryURL : (a.spec.primaryURL ?? a.primaryURL))}`,
    );
  } else if (opts.lease.type === 'etcd') {
    lines.push(
      `  hostname: ${JSON.stringify(a.name)}`,
      `  advertise-url: "http://${a.spec.host ?? '127.0.0.1'}:${a.port}"`,
      '  etcd:',
      `    endpoints: ${JSON.stringify(a.spec.etcdEndpoints ?? opts.lease.endpoints)}`,
      `    key: ${JSON.stringify(opts.lease.key)}`,
      `    ttl: ${JSON.stringify(opts.lease.ttl ?? '2s')}`,
    );
  } else {
    lines.push(
      `  hostname: ${JSON.stringify(a.name)}`,
      `  advertise-url: "${opts.security?.tls !== undefined ? 'https' : 'http'}://${a.spec.host ?? '127.0.0.1'}:${a.port}"`,
      '  consul:',
      `    url: ${JSON.stringify(opts.lease.url)}`,
      `    key: ${JSON.stringify(opts.lease.key)}`,
      `    ttl: ${JSON.stringify(opts.lease.ttl ?? '10s')}`,
      `    lock-delay: ${JSON.stringify(opts.lease.lockDelay ?? '1s')}`,
    );
  }
  // Tests parse the log: one JSON object per line.
  lines.push('log:', '  format: json', '');
  return lines.join('\n');
}

/** litefs.yml lines (inside `http:`) for `sec`. */
export function securityLines(sec: ClusterSecurity | undefined): string[] {
  if (sec === undefined) return [];
  const t = sec.tls;
  return [
    ...(sec.token === '' ? [] : [`  token: ${JSON.stringify(sec.token)}`]),
    ...(t === undefined
      ? []
      : [
          '  tls:',
          ...(t.cert === '' ? [] : [`    cert: ${JSON.stringify(t.cert)}`, `    key: ${JSON.stringify(t.key)}`]),
          `    ca: ${JSON.stringify(t.ca)}`,
          `    client-auth: ${t.clientAuth}`,
        ]),
  ];
}

// ---------------------------------------------------------------- workloads

/**
 * The schema every workload uses: `t` gets one row per transaction and
 * `c.n` counts them in the same transaction, so any read that sees
 * count(t) != c.n saw half a transaction.
 */
export const WORKLOAD_SCHEMA = [
  'PRAGMA journal_mode=DELETE;',
  'CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, node TEXT, v BLOB);',
  'CREATE TABLE IF NOT EXISTS c(k INTEGER PRIMARY KEY, n INTEGER NOT NULL);',
  'INSERT OR IGNORE INTO c VALUES (1, 0);',
].join('\n');

const WRITER_PY = String.raw`
import sqlite3, sys, time, threading
rate = float(sys.argv[1]); total = int(sys.argv[2]); first = int(sys.argv[3]); blob = int(sys.argv[4])
targets = sys.argv[5:]
stop = threading.Event()
def watch():
    for line in sys.stdin:
        if line.strip() == 'stop': break
    stop.set()
threading.Thread(target=watch, daemon=True).start()
conns = {}
def conn(i):
    if i not in conns:
        conns[i] = sqlite3.connect(targets[i], timeout=5, isolation_level=None)
    return conns[i]
cur = 0; nid = first; done = 0
interval = 1.0 / rate if rate > 0 else 0
nxt = time.monotonic()
print('started', flush=True)
while not stop.is_set() and (total == 0 or done < total):
    if interval > 0:
        now = time.monotonic()
        if now < nxt: time.sleep(nxt - now)
        nxt = max(nxt + interval, time.monotonic() - 1)
    try:
        db = conn(cur)
        db.execute('BEGIN IMMEDIATE')
        try:
            db.execute('INSERT INTO t(id, node, v) VALUES (?, ?, randomblob(?))', (nid, str(cur), blob))
            db.execute('UPDATE c SET n = n + 1 WHERE k = 1')
            db.execute('COMMIT')
        except BaseException:
            try: db.execute('ROLLBACK')
            except Exception: pass
            raise
        print('ok %d %d %d %d' % (nid, cur, time.monotonic_ns(), int(time.time() * 1000)), flush=True)
        nid += 1; done += 1
    except sqlite3.IntegrityError as e:
        # The row committed although the client saw an error: move on.
        print('dup %d %d' % (nid, cur), flush=True)
        nid += 1
    except Exception as e:
        print('err %d %s: %s' % (cur, type(e).__name__, str(e).replace('\n', ' ')), flush=True)
        try: conns.pop(cur).close()
        except Exception: pass
        cur = (cur + 1) % len(targets)
        time.sleep(0.05)
print('done %d' % done, flush=True)
`;

export interface WriterResult {
  /** Rows whose COMMIT returned OK: id → target index. */
  committed: Map<number, number>;
  /** When each COMMIT returned OK: id → wall-clock ms (comparable with the daemons' log times). */
  ackedAt: Map<number, number>;
  errors: string[];
  stdout: string;
  stderr: string;
}

/**
 * A writer process: `rate` transactions per second (0: as fast as it can),
 * `total` of them (0: until stop()), each inserting one row into `t` and
 * bumping `c.n`. On an error it moves to the next target database path, as
 * an app looking for the primary would.
 */
export class Writer {
  private readonly child: InteractiveChild;

  constructor(targets: string[], opts: { rate?: number; total?: number; firstID?: number; blobBytes?: number; timeoutMs?: number } = {}) {
    this.child = spawnInteractive(
      'python3',
      [
        '-u',
        '-c',
        WRITER_PY,
        String(opts.rate ?? 50),
        String(opts.total ?? 0),
        String(opts.firstID ?? 1),
        String(opts.blobBytes ?? 200),
        ...targets,
      ],
      { timeoutMs: opts.timeoutMs ?? 300_000 },
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  started(): Promise<string> {
    return this.child.waitForLine('started', 20_000);
  }

  /** Waits until the writer printed an `ok` line for a row with id >= `id`. */
  waitForLine(match: RegExp | string, timeoutMs = 30_000): Promise<string> {
    return this.child.waitForLine(match, timeoutMs);
  }

  /** Asks the writer to stop after its current transaction; resolves with what it did. */
  async stop(timeoutMs = 20_000): Promise<WriterResult> {
    this.child.writeLine('stop');
    this.child.end();
    return this.result(timeoutMs);
  }

  /** Waits for a writer with a `total` to finish by itself. */
  async result(timeoutMs = 120_000): Promise<WriterResult> {
    const timer = setTimeout(() => this.child.kill(), timeoutMs);
    const r = await this.child.exited;
    clearTimeout(timer);
    const committed = new Map<number, number>();
    const ackedAt = new Map<number, number>();
    const errors: string[] = [];
    for (const line of r.stdout.split('\n')) {
      const ok = /^ok (\d+) (\d+) \d+ (\d+)/.exec(line);
      if (ok !== null) {
        committed.set(Number(ok[1]), Number(ok[2]));
        ackedAt.set(Number(ok[1]), Number(ok[3]));
      }
      if (line.startsWith('err ')) errors.push(line);
    }
    return { committed, ackedAt, errors, stdout: r.stdout, stderr: r.stderr };
  }

  kill(): void {
    this.child.kill();
  }
}

const READER_PY = String.raw`
import sqlite3, sys, time, threading
stop = threading.Event()
def watch():
    for line in sys.stdin:
        if line.strip() == 'stop': break
    stop.set()
threading.Thread(target=watch, daemon=True).start()
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
last = None; reads = 0; torn = 0; errors = 0; states = 0
print('started', flush=True)
while not stop.is_set():
    try:
        db.execute('BEGIN')
        try:
            n_rows, max_id = db.execute('SELECT count(*), coalesce(max(id), 0) FROM t').fetchone()
            (n_counter,) = db.execute('SELECT n FROM c WHERE k = 1').fetchone()
        finally:
            db.execute('COMMIT')
        reads += 1
        if n_rows != n_counter:
            torn += 1
            print('torn %d %d' % (n_rows, n_counter), flush=True)
        state = (n_rows, max_id)
        if state != last:
            states += 1
            if last is not None and n_rows < last[0]:
                print('backwards %d %d' % (last[0], n_rows), flush=True)
            last = state
            print('state %d %d %d' % (n_rows, max_id, time.monotonic_ns()), flush=True)
    except Exception as e:
        errors += 1
        print('error %s: %s' % (type(e).__name__, str(e).replace('\n', ' ')), flush=True)
        time.sleep(0.05)
    time.sleep(0.002)
db.close()
print('summary %d %d %d %d' % (reads, states, torn, errors), flush=True)
`;

export interface ReaderSummary {
  reads: number;
  /** Distinct (count, max id) states observed, in order. */
  states: { rows: number; maxID: number }[];
  torn: string[];
  backwards: string[];
  errors: string[];
}

/**
 * A long-lived reader: one SQLite connection held open for the reader's
 * whole life, reading `count(t)`, `max(id)` and `c.n` in one transaction
 * in a loop, reporting each new state and any torn (count != c.n) or
 * backwards state.
 */
export class Reader {
  private readonly child: InteractiveChild;
  private lastRows = -1;

  constructor(dbPath: string, opts: { timeoutMs?: number } = {}) {
    this.child = spawnInteractive('python3', ['-u', '-c', READER_PY, dbPath], { timeoutMs: opts.timeoutMs ?? 300_000 });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  started(): Promise<string> {
    return this.child.waitForLine('started', 20_000);
  }

  /** Waits until the reader has seen at least `rows` rows. */
  async waitForRows(rows: number, timeoutMs = 30_000): Promise<void> {
    if (this.lastRows >= rows) return;
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 1_000_000; i++) {
      const line = await this.child.waitForLine(/^state /, Math.max(1, deadline - Date.now()));
      const n = Number(line.split(' ')[1]);
      this.lastRows = Math.max(this.lastRows, n);
      if (n >= rows) return;
    }
  }

  async stop(timeoutMs = 20_000): Promise<ReaderSummary> {
    this.child.writeLine('stop');
    this.child.end();
    const timer = setTimeout(() => this.child.kill(), timeoutMs);
    const r = await this.child.exited;
    clearTimeout(timer);
    const out: ReaderSummary = { reads: 0, states: [], torn: [], backwards: [], errors: [] };
    for (const line of r.stdout.split('\n')) {
      const parts = line.split(' ');
      if (parts[0] === 'state') out.states.push({ rows: Number(parts[1]), maxID: Number(parts[2]) });
      else if (parts[0] === 'torn') out.torn.push(line);
      else if (parts[0] === 'backwards') out.backwards.push(line);
      else if (parts[0] === 'error') out.errors.push(line);
      else if (parts[0] === 'summary') out.reads = Number(parts[1]);
    }
    if (!r.stdout.includes('summary'))
      out.errors.push(`reader exited without a summary: code ${r.code} signal ${r.signal} stderr ${r.stderr}`);
    return out;
  }

  kill(): void {
    this.child.kill();
  }
}

/** `PRAGMA integrity_check` through `node`'s mount; "ok" when sound. */
export async function integrityCheck(node: ClusterNode, db: string): Promise<string> {
  const r = await node.sql(db, 'PRAGMA integrity_check;');
  if (r.code !== 0) return `sqlite3 failed (${r.code}): ${r.stderr}`;
  return r.stdout.trim();
}

/** Directory names under `<data>/quarantine/<db>/`, with the files in each. */
export async function quarantined(node: ClusterNode, db: string): Promise<{ dir: string; files: string[] }[]> {
  const { readdir } = await import('node:fs/promises');
  const base = path.join(node.node.dataDir, 'quarantine', db);
  let dirs: string[];
  try {
    dirs = await readdir(base);
  } catch {
    return [];
  }
  const out: { dir: string; files: string[] }[] = [];
  for (const d of dirs.sort()) out.push({ dir: path.join(base, d), files: (await readdir(path.join(base, d))).sort() });
  return out;
}
