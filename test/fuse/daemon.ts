/**
 * A separate daemon process for mount tests, run with vite-node:
 *   FUSE_TEST_MOUNTPOINT=<dir> node node_modules/vite-node/vite-node.mjs test/fuse/daemon.ts
 * Mounts a MemFs holding hello.txt and prints "mounted <dir>" when ready,
 * or "error <code> <message>" if mounting failed. FUSE_TEST_MODE:
 *   crash    (default) no handlers, no exit hook: a SIGKILL leaves the mount
 *            exactly as a crash would
 *   handlers installShutdownHandlers(); stdin "throw" raises an uncaught error
 *   exithook only the exit hook; stdin "exit" calls process.exit(0) while mounted
 */
import { FuseMountError, installShutdownHandlers, mount } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';

const dir = process.env.FUSE_TEST_MOUNTPOINT;
const mode = process.env.FUSE_TEST_MODE ?? 'crash';
if (!dir) {
  console.log('error ERR_USAGE FUSE_TEST_MOUNTPOINT is not set');
  process.exit(2);
}
const fs = new MemFs();
fs.writeFile('hello.txt', 'hello from the daemon\n');
if (mode === 'handlers') installShutdownHandlers();
try {
  const m = await mount(dir, fs, { fsname: 'memfs-daemon', subtype: 'memfs', unmountOnExit: mode !== 'crash' });
  fs.mount = m;
  process.stdin.setEncoding('utf8').on('data', (d: string) => {
    if (d.includes('throw')) setImmediate(() => {
      throw new Error('deliberate uncaught error');
    });
    if (d.includes('exit')) process.exit(0);
  });
  console.log(`mounted ${m.mountpoint}`);
  await m.ended;
  process.stdin.destroy();
} catch (err) {
  const code = err instanceof FuseMountError ? err.code : 'ERR_OTHER';
  console.log(`error ${code} ${(err as Error).message}`);
  process.exitCode = 1;
}
