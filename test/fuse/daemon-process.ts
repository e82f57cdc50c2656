import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnInteractive, type InteractiveChild } from '../helpers/processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const viteNode = createRequire(import.meta.url).resolve('vite-node/vite-node.mjs');

export interface DaemonOptions {
  uid?: number;
  gid?: number;
  mode?: 'crash' | 'exithook';
  /** MemFs ioFile: handlers do real fs.promises I/O on it. */
  ioFile?: string;
  /** The daemon's whole environment (default: this process's). FUSE_TEST_* variables are added to it. */
  env?: NodeJS.ProcessEnv;
}

/** Starts test/fuse/daemon.ts in its own node process (optionally as another user). */
export function startDaemon(mountpoint: string, opts: DaemonOptions = {}): InteractiveChild {
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env), FUSE_TEST_MOUNTPOINT: mountpoint, FUSE_TEST_MODE: opts.mode ?? 'crash' };
  if (opts.ioFile !== undefined) env.FUSE_TEST_IOFILE = opts.ioFile;
  return spawnInteractive(process.execPath, [viteNode, path.join(here, 'daemon.ts')], {
    cwd: path.resolve(here, '../..'),
    env,
    timeoutMs: 120_000,
    uid: opts.uid,
    gid: opts.gid,
  });
}
