import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulTestDouble } from '../doubles/consul-double.js';
import { makeTestPKI, type CertPair, type TestPKI } from '../helpers/certs.js';
import {
  Cluster,
  Reader,
  WORKLOAD_SCHEMA,
  Writer,
  freePort,
  poll,
  securityLines,
  sleep,
  type ClusterNode,
  type ClusterSecurity,
} from '../helpers/cluster.js';
import { CLI_PATH, LiteFSNode } from '../helpers/daemon.js';
import { runProcess } from '../helpers/processes.js';

/*
 * Three daemons that trust only each other: every API call carries the
 * token, every connection is TLS with certificates from one CA, and each
 * side checks the other's (mutual TLS). Leased through the Consul double
 * (node0 and node1 candidates, node2 not). In order: replication;
 * replicas and CLI calls with the wrong credentials are refused and
 * change nothing; token and certificates rotate on SIGHUP while writes
 * keep replicating; the primary moves by /promote and by a clean stop.
 */

const DB = 'db';
const KEY = 'litefs/tls';
const TOKEN = 'cluster-token-a1b2c3d4e5f6';
const TOKEN2 = 'cluster-token-rotated-0987';

let pki: TestPKI;
let pkiDir: string;
let consul: ConsulTestDouble;
let cluster: Cluster;
const extra: LiteFSNode[] = [];

function security(token: string, pair: CertPair): ClusterSecurity {
  return { token, tls: { cert: pair.cert, key: pair.key, ca: pki.ca, clientAuth: true } };
}

beforeAll(async () => {
  pkiDir = await mkdtemp(path.join(os.tmpdir(), 'litefs-tls-pki-'));
  pki = makeTestPKI(pkiDir);
  consul = await ConsulTestDouble.start({ ttlMultiplier: 1 });
  cluster = await Cluster.create({
    lease: { type: 'consul', url: consul.url, key: KEY },
    nodes: [{}, {}, { candidate: false }],
    reconnectDelay: '500ms',
    security: security(TOKEN, pki.node),
  });
});

afterAll(async () => {
  for (const n of extra) await n.destroy();
  await cluster?.destroy();
  await consul?.close();
  await rm(pkiDir, { recursive: true, force: true });
});

/** `litefs ARGS` with a time limit. */
function litefs(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runProcess(process.execPath, [CLI_PATH, ...args], { timeoutMs: 30_000, env: { ...process.env, LITEFS_TOKEN: '', ...env } });
}

function tlsFlags(pair: CertPair | null, ca = pki.ca): string[] {
  return [...(pair === null ? [] : ['-cert', pair.cert, '-key', pair.key]), '-ca', ca];
}

async function rowCount(n: ClusterNode): Promise<number> {
  const r = await n.sql(DB, 'SELECT count(*) FROM t;');
  if (r.code !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim());
}

describe('a cluster over mutual TLS with a token', () => {
  let primary: ClusterNode;

  it('replicates', async () => {
    await cluster.start();
    primary = await cluster.findPrimary();
    expect(primary.url).toMatch(/^https:/);
    const w = await primary.sql(DB, `${WORKLOAD_SCHEMA}\nINSERT INTO t(node, v) VALUES ('p', 'one'); UPDATE c SET n = n + 1;`);
    expect(w.code, w.stderr).toBe(0);
    await cluster.waitConverged(DB);
    for (const n of cluster.nodes) expect(await rowCount(n)).toBe(1);
    const announced = primary.logged(/^http: access control$/).at(-1)!;
    expect(announced).toMatchObject({ tls: true, token: 'set', clientAuth: true });
    expect(JSON.stringify(primary.node.logLines(true))).not.toContain(TOKEN);
  });

  it('refuses replicas and CLI calls with the wrong credentials, and nothing changes on disk', async () => {
    const before = await primary.position(DB);
    const sums = await Promise.all(cluster.nodes.map((n) => n.fileChecksum(DB)));
    const primaryURL = primary.url;
    const plainURL = primaryURL.replace('https:', 'http:');

    const replicas: { what: string; url: string; sec: ClusterSecurity; reason: RegExp }[] = [
      {
        what: 'wrong token',
        url: primaryURL,
        sec: security('not-the-token', pki.node),
        reason: /refused this replica \(401\): wrong token/,
      },
      { what: 'no token', url: primaryURL, sec: { ...security('', pki.node), token: '' }, reason: /\(401\): missing token/ },
      {
        what: 'expired certificate',
        url: primaryURL,
        sec: security(TOKEN, pki.expired),
        reason: /client certificate refused: it has expired/,
      },
      {
        what: 'certificate from another CA',
        url: primaryURL,
        sec: security(TOKEN, pki.otherCA),
        reason: /client certificate refused: it is not signed by the CA this node trusts/,
      },
      {
        what: 'primary not signed by its CA',
        url: primaryURL,
        sec: { token: TOKEN, tls: { cert: pki.otherCA.cert, key: pki.otherCA.key, ca: pki.otherCACert, clientAuth: true } },
        reason: /the certificate of 127\.0\.0\.1:\d+ is not signed by a trusted CA/,
      },
      { what: 'cleartext to the TLS port', url: plainURL, sec: { token: TOKEN }, reason: /requires TLS; use an https:\/\/ URL/ },
    ];
    for (const r of replicas) {
      const port = await freePort();
      const node = await LiteFSNode.create({
        prefix: 'litefs-intruder-',
        configText: (d) =>
          [
            'data:',
            `  dir: ${JSON.stringify(d.dataDir)}`,
            'fuse:',
            `  dir: ${JSON.stringify(d.mountDir)}`,
            'http:',
            `  addr: "127.0.0.1:${port}"`,
            ...securityLines(r.sec),
            'lease:',
            '  type: static',
            '  candidate: false',
            `  advertise-url: ${JSON.stringify(r.url)}`,
            '  reconnect-delay: 500ms',
            '',
          ].join('\n'),
      });
      extra.push(node);
      try {
        await node.start();
        // Long enough for several retries (100 ms doubling up to 500 ms).
        await sleep(2500);
        const warned = node.logLines().filter((l) => l['level'] === 'warn' && /replication stream failed/.test(String(l['msg'])));
        expect(
          warned.map((l) => l['msg']),
          r.what,
        ).toHaveLength(1);
        expect(String(warned[0]!['msg']), r.what).toMatch(r.reason);
        expect(
          node.logLines().some((l) => /^following the primary/.test(String(l['msg']))),
          r.what,
        ).toBe(false);
        // Never caught up: the mount's .lag counts from the start, never ~0.
        expect(Number((await readFile(node.path('.lag'), 'utf8')).trim()), r.what).toBeGreaterThanOrEqual(2000);
        expect(await readdir(path.join(node.dataDir, 'dbs')).catch(() => []), r.what).toEqual([]);
        expect(JSON.stringify(node.logLines()), r.what).not.toContain(TOKEN);
      } finally {
        await node.stop();
        await node.destroy();
      }
    }

    const tiny = path.join(pkiDir, 'tiny.db');
    const made = await runProcess('sqlite3', [tiny, 'CREATE TABLE x(y); INSERT INTO x VALUES (1);']);
    expect(made.code, made.stderr).toBe(0);
    const calls: { what: string; args: string[]; env?: NodeJS.ProcessEnv; reason: RegExp }[] = [
      { what: 'wrong token', args: ['-token', 'nope', ...tlsFlags(pki.node)], reason: /\(HTTP 401\): wrong token/ },
      { what: 'no token', args: tlsFlags(pki.node), reason: /\(HTTP 401\): missing token/ },
      {
        what: 'expired certificate',
        args: ['-token', TOKEN, ...tlsFlags(pki.expired)],
        reason: /client certificate refused: it has expired/,
      },
      { what: 'another CA', args: ['-token', TOKEN, ...tlsFlags(pki.otherCA)], reason: /not signed by the CA this node trusts/ },
      { what: 'no client certificate', args: ['-token', TOKEN, ...tlsFlags(null)], reason: /a client certificate is required/ },
      {
        what: 'untrusted primary',
        args: ['-token', TOKEN, ...tlsFlags(pki.node, pki.otherCACert)],
        reason: /is not signed by a trusted CA/,
      },
      { what: 'cleartext', args: ['-token', TOKEN, '-url', plainURL], reason: /speaks TLS only: use an https:\/\/ URL/ },
    ];
    for (const c of calls) {
      const r = await litefs(['import', '-name', DB, '-url', primaryURL, ...c.args, tiny], c.env);
      expect(r.code, `${c.what}: ${r.stderr}`).toBe(1);
      expect(r.stderr.trim().split('\n'), c.what).toHaveLength(1);
      expect(r.stderr, c.what).toMatch(c.reason);
      expect(r.stderr).not.toContain(TOKEN);
    }
    // The token from the environment and TLS from a litefs.yml work.
    const ok = await litefs(['status', '-url', primaryURL, '-config', primary.node.configPath, '--json'], { LITEFS_TOKEN: TOKEN });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ isPrimary: true });

    expect(await primary.position(DB)).toBe(before);
    expect(await Promise.all(cluster.nodes.map((n) => n.fileChecksum(DB)))).toEqual(sums);
    expect((await readdir(primary.node.ltxDir(DB))).filter((f) => f.startsWith('.import-'))).toEqual([]);
  });

  it('rotates token and certificates on SIGHUP while writes keep replicating', async () => {
    const replica = cluster.nodes.find((n) => n !== primary && !n.candidate)!;
    const reader = new Reader(replica.path(DB));
    const writer = new Writer([primary.path(DB)], { rate: 40, firstID: 1000 });
    try {
      await reader.started();
      await writer.started();
      await writer.waitForLine(/^ok 1010 /);
      const connectsBefore = primary.logged(/^replica connected$/).length;

      await cluster.setSecurity(security(TOKEN2, pki.rotated));
      for (const n of [primary, ...cluster.nodes.filter((x) => x !== primary)]) process.kill(n.pid!, 'SIGHUP');
      for (const n of cluster.nodes) {
        await poll(
          async () => (n.logged(/^http: reloaded the token and certificates$/).length > 0 ? true : undefined),
          `${n.name} reloaded`,
          10_000,
        );
      }
      const rowsAtRotation = await rowCount(replica);
      await writer.waitForLine(/^ok 1100 /, 30_000);
      await reader.waitForRows(rowsAtRotation + 40, 30_000);
      // Open streams finished what they started: no replica reconnected.
      expect(primary.logged(/^replica connected$/).length).toBe(connectsBefore);
    } finally {
      const w = await writer.stop();
      expect(w.errors).toEqual([]);
      const r = await reader.stop();
      expect(r.torn).toEqual([]);
      expect(r.backwards).toEqual([]);
    }
    await cluster.waitConverged(DB);

    // New connections use the new material.
    const fp = await servedFingerprint(primary.port);
    expect(fp).toBe(new X509Certificate(await readFile(pki.rotated.cert)).fingerprint256);
    const stale = await litefs(['status', '-url', primary.url, '-token', TOKEN, ...tlsFlags(pki.node)]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/HTTP 401\): wrong token/);
    // A replica restarted on the rotated files rejoins.
    await replica.node.stop();
    await replica.start();
    await cluster.waitConverged(DB);
    expect(replica.logged(/^following the primary/, false).length).toBeGreaterThan(0);
  });

  it('moves the primary by /promote (handoff over TLS) and by a clean stop', async () => {
    const target = cluster.nodes.find((n) => n !== primary && n.candidate)!;
    const r = await litefs(['run', '-url', target.url, '-promote', '-token', TOKEN2, ...tlsFlags(pki.rotated), '--', 'true']);
    expect(r.code, r.stderr).toBe(0);
    expect((await cluster.findPrimary()).name).toBe(target.name);

    await target.node.stop();
    const next = await cluster.findPrimary({ timeoutMs: 30_000 });
    expect(next.name).toBe(primary.name);
    const w = await next.sql(DB, "INSERT INTO t(node, v) VALUES ('after', 'failover'); UPDATE c SET n = n + 1;");
    expect(w.code, w.stderr).toBe(0);
    const pos = await cluster.waitConverged(DB);
    expect(pos).toMatch(/^[0-9a-f]{16}\//);
    await target.start();
    await cluster.waitConverged(DB);
    const counts = await Promise.all(cluster.nodes.map((n) => rowCount(n)));
    expect(new Set(counts).size).toBe(1);
  });
});

/** SHA-256 fingerprint of the certificate a new TLS connection to `port` is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on('error', reject);
  });
}
