import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runProcess } from '../helpers/processes.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * `npm run demo -- stop` stops a running demo with the CLI already built:
 * no compiler run first (which would also rewrite dist/ under the demo's
 * running processes).
 */
it('`npm run demo -- stop` does not rebuild first', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'litefs-demo-stop-'));
  try {
    const r = await runProcess('npm', ['run', 'demo', '--', 'stop', '--dir', dir], { cwd: repoRoot, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('no demo processes were running');
    expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/tsc -p|> litefs-ts@[^ ]+ build/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
