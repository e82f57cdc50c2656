/**
 * Writes a SQLite rollback journal (one segment, synced header with the
 * magic) that would roll `post` back to `pre`: the state a crash leaves
 * when SQLite has written the new pages but not yet finalized the journal.
 * Record checksums follow SQLite's pager: nonce plus every 200th byte from
 * the end of the page.
 */
export function buildHotJournal(pre: Buffer, post: Buffer, pageSize: number, opts: { sectorSize?: number; nonce?: number } = {}): Buffer {
  const sector = opts.sectorSize ?? 512;
  const nonce = (opts.nonce ?? 0x1234_5678) >>> 0;
  const prePages = pre.length / pageSize;
  const records: Buffer[] = [];
  for (let p = 1; p <= prePages; p++) {
    const a = pre.subarray((p - 1) * pageSize, p * pageSize);
    const b = post.subarray((p - 1) * pageSize, p * pageSize);
    if (a.equals(b)) continue;
    const rec = Buffer.alloc(pageSize + 8);
    rec.writeUInt32BE(p, 0);
    a.copy(rec, 4);
    let sum = nonce;
    for (let i = pageSize - 200; i > 0; i -= 200) sum = (sum + a[i]!) >>> 0;
    rec.writeUInt32BE(sum, pageSize + 4);
    records.push(rec);
  }
  const header = Buffer.alloc(sector);
  Buffer.from('d9d505f920a163d7', 'hex').copy(header, 0);
  header.writeUInt32BE(records.length, 8);
  header.writeUInt32BE(nonce, 12);
  header.writeUInt32BE(prePages, 16);
  header.writeUInt32BE(sector, 20);
  header.writeUInt32BE(pageSize, 24);
  return Buffer.concat([header, ...records]);
}
