import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, WORKLOAD_SCHEMA, Writer, freePort, integrityCheck, type ClusterNode } from '../helpers/cluster.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/*
 * Replication streams cut at random moments (a flaky network, a lease
 * watch ending a stream) must never leave a replica whose database differs
 * from the position it reports. Two replicas follow the primary through
 * TCP relays that drop every connection every few hundred milliseconds
 * while a writer commits, in rollback-journal mode and in WAL mode.
 */

let cluster: Cluster;
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  const primaryPort = await freePort();
  for (let i = 0; i < 2; i++) proxies.push(await TcpProxy.start({ host: '127.0.0.1', port: primaryPort }));
  cluster = await Cluster.create({
    lease: { type: 'static' },
    reconnectDelay: '100ms',
    primaryPort,
    nodes: [{}, { primaryURL: proxies[0]!.url }, { primaryURL: proxies[1]!.url }],
  });
  await cluster.start();
});

afterAll(async () => {
  await cluster?.destroy();
  for (const p of proxies) await p.close();
});

describe('replication streams cut at random moments', () => {
  for (const mode of ['DELETE', 'WAL']) {
    it(`${mode}: every replica's database matches the position it reports, and all converge`, async () => {
      const [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
      const db = `cuts-${mode.toLowerCase()}.db`;
      const schema = await n0.sql(db, WORKLOAD_SCHEMA.replace('PRAGMA journal_mode=DELETE;', `PRAGMA journal_mode=${mode};`));
      expect(schema.code, schema.stderr).toBe(0);
      const w = new Writer([n0.path(db)], { rate: 150, total: 400, blobBytes: 3000 });
      let cuts = 0;
      const cutter = setInterval(
        () => {
          for (const p of proxies) cuts += p.cut();
        },
        150 + Math.floor(Math.random() * 200),
      );
      try {
        const res = await w.result();
        expect(res.errors).toEqual([]);
      } finally {
        clearInterval(cutter);
      }
      expect(cuts).toBeGreaterThan(10);
      // The primary's recorded WAL frames into its database file, so its file can be compared too.
      if (mode === 'WAL') expect((await n0.sql(db, 'PRAGMA wal_checkpoint(TRUNCATE);')).code).toBe(0);
      const pos = await cluster.waitConverged(db, { timeoutMs: 60_000 });
      for (const n of [n0, n1, n2]) {
        expect(await n.fileChecksum(db), `${n.name} database file vs its position`).toBe(pos.split('/')[1]);
        expect(await integrityCheck(n, db), `${n.name} integrity`).toBe('ok');
      }
    });
  }
});
