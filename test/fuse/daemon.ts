/**
 * A separate daemon process for mount tests, run with vite-node:
 *   FUSE_TEST_MOUNTPOINT=<dir> node node_modules/vite-node/vite-node.mjs test/fuse/daemon.ts
 * Mounts a MemFs holding hello.txt and prints "mounted <dir>" when ready, or
 * "error <code> <message>" if mounting failed.
 * FUSE_TEST_MODE:
 *   crash    (default) the mount is not detached at exit: a SIGKILL leaves it
 *            exactly as a crash would
 *   exithook the exit hook detaches the mount; stdin "exit" calls
 *            process.exit(0) while mounted
 * stdin "throw" raises an uncaught error.
 * FUSE_TEST_IOFILE: MemFs `ioFile` (handlers then do real fs.promises I/O on it).
 * stdin "stats" prints "stats <json>" with the session stats and MemFs's fileIoOps.
 */
import { FuseMountError, mount } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';

const dir = process.env.FUSE_TEST_MOUNTPOINT;
const mode = process.env.FUSE_TEST_MODE ?? 'crash';
if (!dir) {
  console.log('error ERR_USAGE FUSE_TEST_MOUNTPOINT is not set');
  process.exit(2);
}
const fs = new MemFs({ ioFile: process.env.FUSE_TEST_IOFILE });
fs.writeFile('hello.txt', 'hello from the daemon\n');
try {
  const m = await mount(dir, fs, { fsname: 'memfs-daemon', subtype: 'memfs', unmountOnExit: mode !== 'crash' });
  fs.mount = m;
  process.stdin.setEncoding('utf8').on('data', (d: string) => {
    if (d.includes('stats'))
      console.log(`stats ${JSON.stringify({ ...m.stats(), fileIoOps: fs.fileIoOps, maxWriteSeen: fs.maxWriteSeen })}`);
    if (d.includes('throw'))
      setImmediate(() => {
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
