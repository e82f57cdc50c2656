// Proposed bench/stream-protocol.bench.mjs (the helper that wrote it may not
// edit bench/). Run from the repository root after `npm run build`:
//   node test/http/stream-protocol.bench.mjs
// Prints one JSON object as the last line; every figure next to a baseline
// measured in the same run, and as a ratio.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = (p) => import(pathToFileURL(join(process.cwd(), 'dist', p)).href);
const { encodeLtxFrame, FrameReader } = await dist('http/protocol/index.js');
const { JournalReader, JOURNAL_MAGIC, fileHandleSource, journalRecordChecksum } = await dist('store/journal.js');

const MiB = 1024 * 1024;
const ROUNDS = 5;

async function best(fn) {
  let min = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return min;
}

const mbps = (bytes, s) => Math.round(bytes / MiB / s);

// --- stream codec: a 64 MiB LTX body read from disk in 256 KiB pieces,
// received as 16 KiB HTTP/2 DATA frames.
const BODY = 64 * MiB;
const body = randomBytes(BODY);
const diskPieces = [];
for (let o = 0; o < BODY; o += 256 * 1024) diskPieces.push(body.subarray(o, o + 256 * 1024));

let wire = [];
const encodeS = await best(async () => {
  wire = [];
  for await (const b of encodeLtxFrame('bench.db', diskPieces)) wire.push(b);
});
const copyS = await best(async () => {
  const out = [];
  for (const p of diskPieces) out.push(Buffer.from(p));
});

const joined = Buffer.concat(wire);
const netPieces = [];
for (let o = 0; o < joined.length; o += 16 * 1024) netPieces.push(joined.subarray(o, o + 16 * 1024));
async function* source() {
  for (const p of netPieces) yield p;
}
const decodeS = await best(async () => {
  const r = new FrameReader(source());
  const f = await r.next();
  let n = 0;
  for await (const p of f.body) n += p.length;
  if (n !== BODY) throw new Error('decode length mismatch');
});
const iterateS = await best(async () => {
  let n = 0;
  for await (const p of source()) n += p.length;
  if (n < BODY) throw new Error('short');
});

// --- journal reading: 10,000 records of 4096-byte pages from a file.
const dir = await mkdtemp(join(tmpdir(), 'litefs-bench-'));
const PAGES = 10_000;
const pageSize = 4096;
const sector = 512;
const jbuf = Buffer.alloc(sector + PAGES * (pageSize + 8));
JOURNAL_MAGIC.copy(jbuf, 0);
jbuf.writeUInt32BE(PAGES, 8);
jbuf.writeUInt32BE(12345, 12);
jbuf.writeUInt32BE(PAGES, 16);
jbuf.writeUInt32BE(sector, 20);
jbuf.writeUInt32BE(pageSize, 24);
const pages = randomBytes(PAGES * pageSize);
for (let i = 0; i < PAGES; i++) {
  const o = sector + i * (pageSize + 8);
  jbuf.writeUInt32BE(i + 1, o);
  const page = pages.subarray(i * pageSize, (i + 1) * pageSize);
  page.copy(jbuf, o + 4);
  jbuf.writeUInt32BE(journalRecordChecksum(12345, page), o + 4 + pageSize);
}
const jpath = join(dir, 'db-journal');
await writeFile(jpath, jbuf);
const journalS = await best(async () => {
  const fh = await open(jpath, 'r');
  const r = await JournalReader.open(fileHandleSource(fh));
  let n = 0;
  for await (const rec of r.records()) n += rec.data.length;
  await fh.close();
  if (n !== PAGES * pageSize) throw new Error('journal mismatch');
});
const readFileS = await best(async () => {
  await readFile(jpath);
});
await rm(dir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    name: 'stream-protocol',
    ltxEncodeMBps: mbps(BODY, encodeS),
    baselineBufferCopyMBps: mbps(BODY, copyS),
    encodeRatio: +(copyS / encodeS).toFixed(3),
    ltxDecodeMBps: mbps(BODY, decodeS),
    baselineAsyncIterateMBps: mbps(BODY, iterateS),
    decodeRatio: +(iterateS / decodeS).toFixed(3),
    journalReadMBps: mbps(jbuf.length, journalS),
    baselineReadFileMBps: mbps(jbuf.length, readFileS),
    journalRatio: +(readFileS / journalS).toFixed(3),
  }),
);
