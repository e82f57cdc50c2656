import { defineConfig } from 'vitest/config';

// Workers inherit this: FUSE sessions served inside a test process read
// /dev/fuse on libuv's pool, which must be larger than the default 4 threads.
process.env.UV_THREADPOOL_SIZE ??= '16';

// Mount tests spawn daemons and SQLite clients as child processes; forks keep
// each test file in its own process so a stuck mount cannot wedge the others.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
  },
});
