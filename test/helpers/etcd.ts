import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EtcdClient } from '../../src/lease/etcd-client.js';
import { freePort, poll } from './cluster.js';

/*
 * Real etcd servers (Debian's etcd-server, 3.4) for tests: one member or a
 * cluster of several, each a child process with a temporary data directory
 * and free ports on `host` (loopback unless a test's private bridge).
 * Stopped by PID; destroyAllEtcd() in afterEach/afterAll ends whatever a
 * test left running and removes the directories.
 */

export const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';

const live = new Set<EtcdCluster>();

/** PEM files of a TLS test cluster: one CA, the members' certificate, a client certificate. */
export interface EtcdTLSFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Makes a throwaway CA, a server certificate for `host` and a client certificate with openssl, in `dir`. */
export async function makeTestCertificates(dir: string, host: string): Promise<EtcdTLSFiles> {
  const { runProcess } = await import('./processes.js');
  const { writeFile } = await import('node:fs/promises');
  const f = (n: string): string => path.join(dir, n);
  const openssl = async (...args: string[]): Promise<void> => {
    const r = await runProcess('openssl', args, { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  // clientAuth too: etcd's own JSON gateway dials its gRPC port with the
  // server certificate, and --client-cert-auth checks that one as well.
  await writeFile(f('server.ext'), `subjectAltName=IP:${host}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  await writeFile(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca-key.pem'),
    '-out',
    f('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=litefs-test-ca',
  );
  for (const who of ['server', 'client']) {
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      f(`${who}-key.pem`),
      '-out',
      f(`${who}.csr`),
      '-subj',
      `/CN=litefs-test-${who}`,
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca-key.pem'),
      '-CAcreateserial',
      '-out',
      f(`${who}.pem`),
      '-days',
      '1',
      '-extfile',
      f(`${who}.ext`),
    );
  }
  return {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server-key.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client-key.pem'),
  };
}

export interface EtcdClusterOptions {
  /** Members (default 1). */
  members?: number;
  /** Address every member listens on (default 127.0.0.1). */
  host?: string;
  /** Serve clients over https and require client certificates signed by `ca` (PEM file paths). */
  tls?: EtcdTLSFiles;
}

export class EtcdMember {
  child: ChildProcess | null = null;
  log = '';
  private exited: Promise<void> | null = null;

  constructor(
    readonly name: string,
    readonly host: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly initialCluster: string,
    private readonly tls?: EtcdTLSFiles,
  ) {}

  get clientURL(): string {
    return `${this.tls === undefined ? 'http' : 'https'}://${this.host}:${this.clientPort}`;
  }

  get peerURL(): string {
    return `http://${this.host}:${this.peerPort}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process (a restart keeps the data directory and rejoins). */
  start(): void {
    if (this.child !== null) throw new Error(`${this.name} already running`);
    const child = spawn(
      ETCD_BIN,
      [
        '--name',
        this.name,
        '--data-dir',
        this.dataDir,
        '--listen-client-urls',
        this.clientURL,
        '--advertise-client-urls',
        this.clientURL,
        '--listen-peer-urls',
        this.peerURL,
        '--initial-advertise-peer-urls',
        this.peerURL,
        '--initial-cluster',
        this.initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        path.basename(path.dirname(this.dataDir)),
        '--logger',
        'zap',
        '--log-level',
        'warn',
        ...(this.tls === undefined
          ? []
          : ['--cert-file', this.tls.serverCert, '--key-file', this.tls.serverKey, '--client-cert-auth', '--trusted-ca-file', this.tls.ca]),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (this.log.length < 1_000_000) this.log += d;
    });
    this.exited = new Promise((resolve) => {
      child.on('close', () => {
        if (this.child === child) this.child = null;
        resolve();
      });
      child.on('error', (err) => {
        this.log += `spawn error: ${String(err)}\n`;
      });
    });
  }

  /** Signals the process by PID and waits (bounded) for it to exit; SIGKILL if it does not. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (child === null) return;
    signalPid(child.pid, signal);
    const t = setTimeout(() => signalPid(child.pid, 'SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  /** SIGSTOP / SIGCONT by PID: a member that hangs without closing its sockets. */
  freeze(frozen: boolean): void {
    signalPid(this.child?.pid, frozen ? 'SIGSTOP' : 'SIGCONT');
  }
}

export class EtcdCluster {
  private constructor(
    readonly root: string,
    readonly members: EtcdMember[],
    private readonly tls?: EtcdTLSFiles,
  ) {}

  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const n = opts.members ?? 1;
    const host = opts.host ?? '127.0.0.1';
    const root = await mkdtemp(path.join(os.tmpdir(), 'litefs-etcd-'));
    const ports = new Set<number>();
    while (ports.size < 2 * n) ports.add(await freePort());
    const [clientPorts, peerPorts] = [[...ports].slice(0, n), [...ports].slice(n)];
    const names = Array.from({ length: n }, (_, i) => `m${i}`);
    const initial = names.map((name, i) => `${name}=http://${host}:${peerPorts[i]!}`).join(',');
    const members = names.map(
      (name, i) => new EtcdMember(name, host, clientPorts[i]!, peerPorts[i]!, path.join(root, name), initial, opts.tls),
    );
    const cluster = new EtcdCluster(root, members, opts.tls);
    live.add(cluster);
    try {
      for (const m of members) m.start();
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientURL);
  }

  member(i: number): EtcdMember {
    const m = this.members[i];
    if (m === undefined) throw new Error(`no etcd member ${i}`);
    return m;
  }

  /** Index of the member that is the Raft leader now, as a running member reports it. */
  async leaderIndex(): Promise<number> {
    return poll(
      async () => {
        for (const m of this.members.filter((x) => x.running)) {
          const r = await fetch(`${m.clientURL}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2000) });
          const body = (await r.json()) as { header?: { member_id?: string }; leader?: string };
          if (body.leader === undefined || body.leader === '0') continue;
          if (body.header?.member_id === body.leader) return this.members.indexOf(m);
        }
        return undefined;
      },
      'an etcd leader',
      20_000,
      100,
    );
  }

  /** Waits until every running member answers a linearizable read (it has a leader). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const tls = this.tls === undefined ? undefined : await loadTLS(this.tls);
    try {
      await poll(
        async () => {
          for (const m of this.members.filter((x) => x.running)) {
            const c = new EtcdClient([m.clientURL], 2_000, tls);
            try {
              await c.range('health-probe');
            } finally {
              await c.close();
            }
          }
          return true;
        },
        `etcd members ${this.members.map((m) => m.name).join(', ')} to be healthy`,
        timeoutMs,
        100,
      );
    } catch (err) {
      throw new Error(`${String(err)}\n${this.members.map((m) => `${m.name}: ${m.log.slice(-2000)}`).join('\n')}`);
    }
  }

  /** Stops every member (by PID) and removes the data directories. */
  async destroy(): Promise<void> {
    try {
      for (const m of this.members) {
        m.freeze(false);
        await m.stop('SIGKILL');
      }
      await rm(this.root, { recursive: true, force: true });
    } finally {
      live.delete(this);
    }
  }
}

async function loadTLS(tls: EtcdTLSFiles): Promise<{ ca: Buffer; cert: Buffer; key: Buffer }> {
  const { readFile } = await import('node:fs/promises');
  return { ca: await readFile(tls.ca), cert: await readFile(tls.clientCert), key: await readFile(tls.clientKey) };
}

function signalPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** For afterEach/afterAll: ends every etcd this test process started. */
export async function destroyAllEtcd(): Promise<void> {
  for (const c of [...live]) await c.destroy();
}
