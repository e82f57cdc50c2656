// @ts-check
/**
 * Writes a small file durably, synchronously: temp file, write, fdatasync,
 * rename over the final name, fsync the directory — the order that makes a
 * commit's LTX file crash-safe. The durable writer runs it inline on the
 * event loop while the disk is fast, and on its own thread (this module,
 * loaded as a worker) while it is slow; both run this one function.
 *
 * Plain JavaScript: a worker thread loads it from src/ under the test
 * runner and from dist/ in production alike.
 */
import * as fs from 'node:fs';
import { isMainThread, parentPort } from 'node:worker_threads';

/**
 * @param {string} path
 * @param {Uint8Array} data
 * @returns {number} the milliseconds the work took
 */
export function writeDurablySync(path, data) {
  const started = performance.now();
  const tmp = `${path}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
    // Opened each time rather than cached: a directory removed and created
    // again would leave a cached descriptor syncing the old one, silently.
    const dir = fs.openSync(path.slice(0, Math.max(1, path.lastIndexOf('/'))), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // Already gone, or never created.
    }
    throw err;
  }
  return performance.now() - started;
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  port.on('message', (/** @type {{ id: number; path: string; data: ArrayBuffer }} */ m) => {
    try {
      const ms = writeDurablySync(m.path, new Uint8Array(m.data));
      port.postMessage({ id: m.id, ms });
    } catch (err) {
      const e = /** @type {NodeJS.ErrnoException} */ (err);
      port.postMessage({ id: m.id, error: { message: e.message, code: e.code } });
    }
  });
}
