import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnInteractive, type InteractiveChild } from '../helpers/processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const viteNode = createRequire(import.meta.url).resolve('vite-node/vite-node.mjs');

/** Starts test/fuse/daemon.ts in its own node process (optionally as another user). */
export function startDaemon(mountpoint: string, opts: { uid?: number; gid?: number; mode?: 'crash' | 'handlers' | 'exithook' } = {}): InteractiveChild {
  return spawnInteractive(process.execPath, [viteNode, path.join(here, 'daemon.ts')], {
    cwd: path.resolve(here, '../..'),
    env: { ...process.env, FUSE_TEST_MOUNTPOINT: mountpoint, FUSE_TEST_MODE: opts.mode ?? 'crash' },
    timeoutMs: 120_000,
    uid: opts.uid,
    gid: opts.gid,
  });
}
