import { execFile, spawn } from 'node:child_process';
import { constants, existsSync, openSync, closeSync } from 'node:fs';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { resolve, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clearFuseMounts } from '../fuse/index.js';
import { describeError } from '../internal/index.js';
import type { NodeInfo } from '../http/index.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './commands.js';
import { nodeClient, type NodeClient } from './node-client.js';
import { fetchInfo } from './status.js';

const USAGE = `usage: litefs demo [start|stop] [--dir DIR] [--smoke] [-token TOKEN] [-cert PATH -key PATH [-ca PATH]]

start (default)  starts a three-node cluster on loopback (a static primary and
                 two replicas, each its own litefs process with its own data
                 directory and mount under DIR), writes rows on the primary
                 with the sqlite3 CLI and shows them arriving on the replicas
stop             stops the demo's processes; they unmount on the way out

  --dir DIR   where the demo lives (default ./.demo)
  --smoke     start, check the replicas received the rows, stop; exit 1 on failure (CI)
  -token T    require this bearer token on every node (default: $LITEFS_TOKEN, if set)
  -cert PATH, -key PATH
              serve every node's API over TLS with this certificate (it must name
              127.0.0.1); with -ca PATH, mutual TLS: nodes verify each other's
              certificates against that CA
`;

/** How the demo's nodes protect their API, and how the demo itself calls them. */
interface DemoAccess {
  token: string;
  tls: { cert: string; key: string; ca: string } | null;
  client: NodeClient;
}

const NODES = ['node1', 'node2', 'node3'] as const;
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

interface DemoNode {
  name: string;
  dir: string;
  mount: string;
  url: string;
  pid: number | null;
}

export const demoCommand: Command = async (argv) => {
  const args = parseCommandArgs(
    'demo',
    USAGE,
    argv,
    {
      dir: { type: 'string', default: '.demo' },
      smoke: { type: 'boolean', default: false },
      token: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
    },
    {
      allowPositionals: true,
      check: (a) => {
        if ((a.values.cert === undefined) !== (a.values.key === undefined)) throw new Error('-cert and -key go together');
        if (a.values.ca !== undefined && a.values.cert === undefined) throw new Error('-ca needs -cert and -key');
      },
    },
  );
  if (typeof args === 'number') return args;
  const action = args.positionals[0] ?? 'start';
  const dir = resolve(args.values.dir);
  if (action === 'stop') return stopDemo(dir);
  if (action !== 'start') {
    process.stderr.write(`litefs demo: unknown action "${action}"\n${USAGE}`);
    return 2;
  }
  const problem = await preflight();
  if (problem !== null) {
    process.stderr.write(`litefs demo: ${problem}\n`);
    return 1;
  }
  await stopDemo(dir, true);
  const token = args.values.token ?? process.env['LITEFS_TOKEN'] ?? '';
  const { cert, key, ca } = args.values;
  const tls =
    cert !== undefined && key !== undefined ? { cert: resolve(cert), key: resolve(key), ca: ca === undefined ? '' : resolve(ca) } : null;
  let nodes: DemoNode[] = [];
  let access: DemoAccess | null = null;
  try {
    access = { token, tls, client: await nodeClient({ token, ...(tls === null ? {} : tls) }) };
    nodes = await startCluster(dir, access);
    const code = await showReplication(nodes, dir, args.values.smoke, access);
    if (args.values.smoke) {
      await stopDemo(dir, true);
      say(code === 0 ? 'smoke test passed; demo stopped' : 'smoke test FAILED; demo stopped');
      return code;
    }
    if (code !== 0) return code;
    printTour(nodes, dir, access);
    return 0;
  } catch (err) {
    process.stderr.write(`litefs demo: ${describeError(err)}\n  logs: ${join(dir, 'node*', 'litefs.log')}\n`);
    await stopDemo(dir, true);
    return 1;
  } finally {
    await access?.client.close();
  }
};

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function preflight(): Promise<string | null> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'the demo mounts FUSE filesystems, which needs root: run it with sudo (or as root)';
  }
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/fuse is missing or not accessible: load the fuse module (modprobe fuse) or run where FUSE is available';
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

async function startCluster(dir: string, access: DemoAccess): Promise<DemoNode[]> {
  await mkdir(dir, { recursive: true });
  const ports = [await freePort(), await freePort(), await freePort()];
  const scheme = access.tls === null ? 'http' : 'https';
  const primaryURL = `${scheme}://127.0.0.1:${ports[0]!}`;
  const nodes: DemoNode[] = NODES.map((name, i) => ({
    name,
    dir: join(dir, name),
    mount: join(dir, name, 'mnt'),
    url: `${scheme}://127.0.0.1:${ports[i]!}`,
    pid: null,
  }));
  // The token stays out of the config files: they name the variable.
  const security = [
    ...(access.token === '' ? [] : ['  token: "${LITEFS_TOKEN}"']),
    ...(access.tls === null
      ? []
      : [
          '  tls:',
          `    cert: ${JSON.stringify(access.tls.cert)}`,
          `    key: ${JSON.stringify(access.tls.key)}`,
          ...(access.tls.ca === '' ? [] : [`    ca: ${JSON.stringify(access.tls.ca)}`, '    client-auth: true']),
        ]),
  ];
  say(`starting a three-node LiteFS cluster in ${dir}`);
  for (const [i, n] of nodes.entries()) {
    await mkdir(n.mount, { recursive: true });
    const config = [
      `# ${n.name} of the litefs demo (${i === 0 ? 'the static primary' : 'a replica'})`,
      'fuse:',
      `  dir: ${JSON.stringify(n.mount)}`,
      'data:',
      `  dir: ${JSON.stringify(join(n.dir, 'data'))}`,
      'http:',
      `  addr: "127.0.0.1:${ports[i]!}"`,
      ...security,
      'log:',
      '  format: json',
      'lease:',
      '  type: static',
      `  candidate: ${i === 0}`,
      '  hostname: node1',
      `  advertise-url: ${JSON.stringify(primaryURL)}`,
      '',
    ].join('\n');
    const configPath = join(n.dir, 'litefs.yml');
    await writeFile(configPath, config);
    const log = openSync(join(n.dir, 'litefs.log'), 'a');
    const child = spawn(process.execPath, [CLI, 'mount', '-config', configPath], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, LITEFS_TOKEN: access.token },
    });
    closeSync(log);
    child.unref();
    n.pid = child.pid ?? null;
    await writeFile(join(n.dir, 'pid'), `${n.pid ?? ''}\n`);
  }
  for (const n of nodes) {
    const info = await waitFor(n, (x) => x.ready, 30_000, 'to be ready', access.client);
    say(`  ${n.name}  ${info.isPrimary ? 'primary' : 'replica'}  mount ${n.mount}  api ${n.url}`);
  }
  return nodes;
}

async function waitFor(n: DemoNode, ok: (i: NodeInfo) => boolean, timeoutMs: number, what: string, client: NodeClient): Promise<NodeInfo> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const info = await fetchInfo(n.url, 2000, client);
      if (ok(info)) return info;
      last = `ready=${info.ready} primary=${info.isPrimary}`;
    } catch (err) {
      last = client.explain(err, n.url);
    }
    if (n.pid !== null && !alive(n.pid)) throw new Error(`${n.name} exited; see ${join(n.dir, 'litefs.log')}`);
    if (Date.now() > deadline) throw new Error(`${n.name} did not get ${what} within ${timeoutMs / 1000}s (${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const PY_CLIENT = [
  'import sqlite3, sys',
  'c = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)',
  'sql = sys.argv[2].strip()',
  "if sql.upper().startswith('SELECT'):",
  "    for r in c.execute(sql.rstrip(';')): print('|'.join(str(x) for x in r))",
  'else:',
  '    c.executescript(sql)',
].join('\n');

/** A SQLite client in a child process: the sqlite3 CLI if installed, else python3. */
function sql(db: string, statements: string): Promise<string> {
  const viaCLI = existsSync('/usr/bin/sqlite3') || existsSync('/usr/local/bin/sqlite3');
  const [file, args] = viaCLI ? ['sqlite3', ['-cmd', '.timeout 5000', db, statements]] : ['python3', ['-c', PY_CLIENT, db, statements]];
  return new Promise((res, rej) => {
    execFile(file, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${file}: ${stderr.trim() || err.message}`));
      else res(stdout);
    });
  });
}

async function showReplication(nodes: DemoNode[], _dir: string, smoke: boolean, access: DemoAccess): Promise<number> {
  const [primary, ...replicas] = nodes as [DemoNode, DemoNode, DemoNode];
  const db = join(primary.mount, 'demo.db');
  say('');
  say(`writing on the primary:  sqlite3 ${db}`);
  await sql(
    db,
    'CREATE TABLE IF NOT EXISTS greetings(id INTEGER PRIMARY KEY, node TEXT, msg TEXT); ' +
      "INSERT INTO greetings(node, msg) VALUES ('node1', 'hello from the primary'), ('node1', 'replicated by LTX files'), ('node1', 'over HTTP/2');",
  );
  const want = await waitFor(primary, (i) => i.databases.some((d) => d.name === 'demo.db'), 10_000, 'the demo database', access.client);
  const target = want.databases.find((d) => d.name === 'demo.db')!;
  say(`  primary position ${target.txid}/${target.checksum}`);
  let failed = false;
  for (const r of replicas) {
    await waitFor(
      r,
      (i) => i.databases.some((d) => d.name === 'demo.db' && d.txid === target.txid && d.checksum === target.checksum),
      15_000,
      `to TXID ${target.txid}`,
      access.client,
    );
    const rows = (await sql(join(r.mount, 'demo.db'), 'SELECT id, msg FROM greetings ORDER BY id;')).trim();
    say(`reading on ${r.name} (${r.mount}/demo.db):`);
    for (const line of rows.split('\n')) say(`  ${line}`);
    const primaryFile = (await readFile(join(r.mount, '.primary'), 'utf8')).trim();
    say(`  ${r.name}/.primary says the primary is "${primaryFile}"`);
    if (smoke && (rows.split('\n').length !== 3 || !rows.includes('hello from the primary'))) failed = true;
  }
  try {
    await sql(join(replicas[0].mount, 'demo.db'), "INSERT INTO greetings(node, msg) VALUES ('node2', 'should fail');");
    say('  a write on a replica unexpectedly succeeded');
    failed = true;
  } catch (err) {
    say(`writing on node2 is refused, as on any replica: ${describeError(err).split('\n')[0]}`);
  }
  return failed ? 1 : 0;
}

function printTour(nodes: DemoNode[], dir: string, access: DemoAccess): void {
  const tls =
    access.tls === null ? '' : ` -cert ${access.tls.cert} -key ${access.tls.key}${access.tls.ca === '' ? '' : ` -ca ${access.tls.ca}`}`;
  const token = access.token === '' ? '' : 'LITEFS_TOKEN=… ';
  const [p, r] = nodes as [DemoNode, DemoNode, DemoNode];
  say('');
  say('The demo keeps running. Look around:');
  say(`  sqlite3 ${p.mount}/demo.db "INSERT INTO greetings(node, msg) VALUES ('you', 'hi')"`);
  say(`  sqlite3 -cmd '.timeout 2000' ${r.mount}/demo.db "SELECT * FROM greetings"  # the row is there`);
  say('  (readers on a replica set a busy timeout, as with any SQLite database another process writes)');
  say(`  cat ${r.mount}/demo.db-pos ${r.mount}/.primary ${r.mount}/.lag`);
  say(`  ${token}node ${CLI} status -url ${r.url}${tls}`);
  say(`  ls ${p.dir}/data/dbs/demo.db/ltx                             # one LTX file per transaction`);
  say(`  tail ${dir}/node*/litefs.log`);
  say('Stop it (unmounts everything):');
  say(`  npm run demo -- stop        (or: node ${CLI} demo stop --dir ${dir})`);
}

async function stopDemo(dir: string, quiet = false): Promise<number> {
  let stopped = 0;
  for (const name of NODES) {
    const nodeDir = join(dir, name);
    let pid: number | null = null;
    try {
      pid = Number((await readFile(join(nodeDir, 'pid'), 'utf8')).trim()) || null;
    } catch {
      pid = null;
    }
    if (pid !== null && alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      stopped++;
    }
    await clearFuseMounts(join(nodeDir, 'mnt')).catch(() => undefined);
    await rm(join(nodeDir, 'pid'), { force: true });
  }
  if (!quiet) say(stopped > 0 ? `stopped ${stopped} litefs process(es); mounts removed` : 'no demo processes were running');
  return 0;
}
