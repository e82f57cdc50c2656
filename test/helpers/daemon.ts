import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fuseMountsAt } from '../../src/fuse/index.js';
import { cleanupMount } from './mounts.js';

/*
 * A real `litefs mount -config FILE` daemon in its own process, one per
 * node, with its own temporary data and mount directories. Tests talk to it
 * only through the mount (SQLite clients in child processes) and the data
 * directory, exactly as an operator would.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * The compiled CLI; build with `npx tsc -p tsconfig.json` first. LITEFS_CLI
 * points elsewhere (a private build while dist/ is being rebuilt).
 */
export const CLI_PATH = process.env.LITEFS_CLI ?? path.join(repoRoot, 'dist/cli/main.js');

export interface NodeOptions {
  /** data.retention (Go duration); default: the config default. */
  retention?: string;
  /** data.retention-monitor-interval (Go duration). */
  retentionMonitorInterval?: string;
  /** data.compress; default true. */
  compress?: boolean;
  /** Extra CLI flags, e.g. ['-fuse.debug', '-debug']. */
  args?: string[];
  /** Replaces the generated litefs.yml entirely (dirs are passed in). */
  configText?: (dirs: { dataDir: string; mountDir: string }) => string;
  /** Prefix of the temporary root directory. */
  prefix?: string;
  /**
   * A command the daemon is exec'd through, e.g. ['nsenter',
   * '--net=/run/netns/X'] to run it in a network namespace. It must exec
   * (not fork), so the PID stays the daemon's.
   */
  wrap?: string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Give up waiting for readiness after this long (default 30 s). */
  timeoutMs?: number;
}

/** Thrown by start() when the daemon exits before it is ready. */
export class DaemonExitedError extends Error {
  constructor(
    readonly exit: ExitInfo,
    readonly stderr: string,
  ) {
    super(`litefs mount exited (code ${exit.code}, signal ${exit.signal}) before it was ready:\n${stderr}`);
  }
}

const live = new Set<LiteFSNode>();
const MAX_LOG = 64 * 1024 * 1024;

/** One LiteFS node: config, directories and (while started) the daemon process. */
export class LiteFSNode {
  readonly root: string;
  readonly dataDir: string;
  readonly mountDir: string;
  readonly configPath: string;
  private readonly opts: NodeOptions;
  private child: ChildProcess | null = null;
  private exitPromise: Promise<ExitInfo> | null = null;
  private lastExit: ExitInfo | null = null;
  /** Everything every daemon run of this node wrote to stderr (the structured log). */
  stderr = '';
  stdout = '';
  /** Offset in `stderr` where the current (or last) run began. */
  runStart = 0;

  private constructor(root: string, opts: NodeOptions) {
    this.root = root;
    this.dataDir = path.join(root, 'data');
    this.mountDir = path.join(root, 'mnt');
    this.configPath = path.join(root, 'litefs.yml');
    this.opts = opts;
  }

  /** Creates the directories and litefs.yml (static lease, this node primary). */
  static async create(opts: NodeOptions = {}): Promise<LiteFSNode> {
    const root = await mkdtemp(path.join(os.tmpdir(), opts.prefix ?? 'litefs-node-'));
    const node = new LiteFSNode(root, opts);
    live.add(node);
    await mkdir(node.dataDir, { recursive: true });
    await mkdir(node.mountDir, { recursive: true });
    await node.writeConfig();
    return node;
  }

  private async writeConfig(): Promise<void> {
    const dirs = { dataDir: this.dataDir, mountDir: this.mountDir };
    const custom = this.opts.configText?.(dirs);
    // Tests parse the log, so a config without a log section gets JSON lines.
    const text =
      (custom === undefined ? undefined : /^log:/m.test(custom) ? custom : `${custom.replace(/\n*$/, '\n')}log:\n  format: json\n`) ??
      [
        'data:',
        `  dir: ${JSON.stringify(this.dataDir)}`,
        `  compress: ${this.opts.compress ?? true}`,
        ...(this.opts.retention === undefined ? [] : [`  retention: ${JSON.stringify(this.opts.retention)}`]),
        ...(this.opts.retentionMonitorInterval === undefined
          ? []
          : [`  retention-monitor-interval: ${JSON.stringify(this.opts.retentionMonitorInterval)}`]),
        'fuse:',
        `  dir: ${JSON.stringify(this.mountDir)}`,
        'http:',
        '  addr: "127.0.0.1:0"',
        'lease:',
        '  type: static',
        '  candidate: true',
        '  hostname: "127.0.0.1"',
        '  advertise-url: "http://127.0.0.1:20202"',
        // Tests parse the log: one JSON object per line.
        'log:',
        '  format: json',
        '',
      ].join('\n');
    await writeFile(this.configPath, text);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** How the last run ended (null while running or never started). */
  get exit(): ExitInfo | null {
    return this.lastExit;
  }

  /** Path of a file in the mount. */
  path(name: string): string {
    return path.join(this.mountDir, name);
  }

  dbDir(db: string): string {
    return path.join(this.dataDir, 'dbs', db);
  }

  /** The underlying SQLite file of a database. */
  databaseFile(db: string): string {
    return path.join(this.dbDir(db), 'database');
  }

  journalFile(db: string): string {
    return path.join(this.dbDir(db), 'journal');
  }

  ltxDir(db: string): string {
    return path.join(this.dbDir(db), 'ltx');
  }

  /** Starts the daemon and waits until the mount serves requests. */
  async start(opts: StartOptions = {}): Promise<void> {
    if (this.child !== null) throw new Error('daemon already running');
    this.runStart = this.stderr.length;
    this.lastExit = null;
    // process.env carries UV_THREADPOOL_SIZE (vitest.config.ts), which the
    // daemon's FUSE session needs at process start.
    const argv = [process.execPath, CLI_PATH, 'mount', '-config', this.configPath, ...(this.opts.args ?? [])];
    const [cmd, ...args] = [...(this.opts.wrap ?? []), ...argv] as [string, ...string[]];
    const child = spawn(cmd, args, {
      cwd: this.root,
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stdout.length < MAX_LOG) this.stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < MAX_LOG) this.stderr += d;
    });
    this.exitPromise = new Promise<ExitInfo>((resolve) => {
      child.on('error', (err) => {
        this.stderr += `spawn error: ${String(err)}\n`;
      });
      child.on('close', (code, signal) => {
        const info = { code, signal };
        this.lastExit = info;
        if (this.child === child) this.child = null;
        resolve(info);
      });
    });
    await this.waitReady(opts.timeoutMs ?? 30_000);
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const exited = this.exitPromise!;
    let gone: ExitInfo | null = null;
    void exited.then((e) => {
      gone = e;
    });
    for (;;) {
      if (gone !== null) throw new DaemonExitedError(gone, this.runLog());
      if ((await fuseMountsAt(this.mountDir)).length > 0) {
        // The mount exists; a read of `.lag` proves the daemon answers.
        const lag = await readFile(path.join(this.mountDir, '.lag'), 'utf8').catch(() => null);
        if (lag !== null && /^\+\d{9,10}\n$/.test(lag)) return;
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`litefs mount was not ready within ${timeoutMs} ms:\n${this.runLog()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for the running daemon to exit by itself (e.g. a startup failure). */
  async waitExit(timeoutMs = 30_000): Promise<ExitInfo> {
    if (this.exitPromise === null) throw new Error('daemon never started');
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`daemon ${this.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exitPromise, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a daemon that is expected to fail at startup; resolves with its exit and log. */
  async startExpectingFailure(timeoutMs = 30_000): Promise<{ exit: ExitInfo; stderr: string }> {
    try {
      await this.start({ timeoutMs });
    } catch (err) {
      if (err instanceof DaemonExitedError) return { exit: err.exit, stderr: err.stderr };
      throw err;
    }
    throw new Error(`litefs mount started although it was expected to fail:\n${this.runLog()}`);
  }

  /** Clean shutdown: `signal` (SIGTERM by default), then wait for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<ExitInfo> {
    const child = this.child;
    if (child === null) return this.lastExit ?? { code: null, signal: null };
    signalPid(child.pid, signal);
    try {
      return await this.waitExit(timeoutMs);
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  /** SIGKILL by PID (a crash), then wait for the exit. The mount is left stale. */
  async kill(): Promise<ExitInfo> {
    const child = this.child;
    if (child === null) return this.lastExit ?? { code: null, signal: null };
    signalPid(child.pid, 'SIGKILL');
    return this.waitExit(10_000);
  }

  /** The log of the current (or last) run. */
  runLog(): string {
    return this.stderr.slice(this.runStart);
  }

  /** Structured log lines (JSON objects) of the current run, or of every run. */
  logLines(allRuns = false): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of (allRuns ? this.stderr : this.runLog()).split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line cut by a SIGKILL.
      }
    }
    return out;
  }

  /** Kills the daemon if it runs, removes the mount whatever its state, deletes the directories. */
  async destroy(): Promise<void> {
    try {
      if (this.child !== null) await this.kill().catch(() => undefined);
      await cleanupMount(this.mountDir);
      if ((await fuseMountsAt(this.mountDir)).length === 0) await rm(this.root, { recursive: true, force: true });
    } finally {
      live.delete(this);
    }
  }
}

function signalPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Creates a node and starts its daemon. */
export async function startNode(opts: NodeOptions = {}): Promise<LiteFSNode> {
  const node = await LiteFSNode.create(opts);
  await node.start();
  return node;
}

/** For afterEach: kills and cleans up every node created by this process. */
export async function destroyAllNodes(): Promise<void> {
  for (const node of [...live]) await node.destroy();
}
