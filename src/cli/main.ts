#!/usr/bin/env node
/**
 * Entry point of the `litefs` command.
 *
 * The FUSE session reads /dev/fuse from libuv's thread pool, and the
 * passthrough I/O it serves uses the same pool; the default of 4 threads
 * would let a few blocked reads starve file I/O. The size is read once, when
 * the pool first starts, so it is set here before any module that could
 * touch the pool is loaded (hence the dynamic import below).
 */
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = '16';

const { main } = await import('./commands.js');
process.exitCode = await main(process.argv.slice(2));
