import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Workers inherit this: FUSE sessions served inside a test process do their
// file I/O on libuv's pool.
process.env.UV_THREADPOOL_SIZE ??= '16';

/**
 * Unit tests need no root, no mount, no daemon process and no external
 * service; they run in seconds (`npm run test:unit`, also as an
 * unprivileged user). Everything else — real mounts, daemons, clusters,
 * SQLite clients through FUSE, etcd — is the integration project.
 * `npm test` runs both.
 */
const UNIT_DIRS = ['config', 'doubles', 'http', 'lease', 'ltx', 'observability', 'proxy', 'store', 'unit'];
const UNIT_FILES = [
  'fuse/protocol.test.ts',
  'fuse/reader-threads.test.ts',
  'fuse/session.test.ts',
  'fuse/session-transport.test.ts',
  'transfer/http.test.ts',
];
/** Files in unit folders that need root, a mount or a real service. */
const INTEGRATION_IN_UNIT_DIRS = [/^observability\/daemon\.test\.ts$/, /^lease\/(etcd|netns|fencing)[^/]*\.test\.ts$/];

function isUnit(rel: string): boolean {
  if (INTEGRATION_IN_UNIT_DIRS.some((re) => re.test(rel))) return false;
  return UNIT_FILES.includes(rel) || UNIT_DIRS.includes(rel.split('/')[0] ?? '');
}

function testFiles(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) return testFiles(dir, r);
    return e.name.endsWith('.test.ts') ? [r] : [];
  });
}

const all = testFiles('test');
const unit = all.filter(isUnit).map((f) => `test/${f}`);
const integration = all.filter((f) => !isUnit(f)).map((f) => `test/${f}`);

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'text', 'html'],
      reportsDirectory: 'coverage',
    },
    projects: [
      { extends: true, test: { name: 'unit', include: unit } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: integration,
          // Mount tests spawn daemons and SQLite clients as child processes;
          // forks keep each test file in its own process so a stuck mount
          // cannot wedge the others.
          pool: 'forks',
          poolOptions: { forks: { maxForks: 2, minForks: 1 } },
        },
      },
    ],
  },
});
