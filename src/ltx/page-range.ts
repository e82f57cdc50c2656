/**
 * The serial core of computePageChecksums: hashes a run of pages of a file
 * into a Uint32Array of (low, high) checksum halves. Shared by the calling
 * thread and the worker threads.
 */
import { read as readCb } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pageChecksumsInto } from './crc64.js';

/** A database file: a path (opened here), a raw fd or an open FileHandle (both left open). */
export type FileRef = string | number | FileHandle;

// Reads are issued this large (whole pages) and double-buffered so the next
// read is in flight while the current chunk is hashed.
const READ_CHUNK = 4 << 20;

type Reader = (buf: Uint8Array, position: number) => Promise<number>;

async function withReader<T>(ref: FileRef, fn: (read: Reader) => Promise<T>): Promise<T> {
  if (typeof ref === 'number') {
    const fd = ref;
    return fn(
      (buf, position) =>
        new Promise<number>((resolve, reject) => {
          readCb(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n)));
        }),
    );
  }
  const fh = typeof ref === 'string' ? await open(ref, 'r') : ref;
  try {
    return await fn(async (buf, position) => (await fh.read(buf, 0, buf.length, position)).bytesRead);
  } finally {
    if (typeof ref === 'string') await fh.close();
  }
}

async function readFull(read: Reader, buf: Uint8Array, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const n = await read(buf.subarray(got), position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * Checksums pages firstPgno .. firstPgno+count-1 into out[2*(outIndex+i)]
 * (low) and out[2*(outIndex+i)+1] (high). Pages at or past EOF, including
 * a partial last page, are left untouched (0 in a fresh array).
 */
export async function checksumPageRange(
  file: FileRef,
  pageSize: number,
  firstPgno: number,
  count: number,
  out: Uint32Array,
  outIndex: number,
): Promise<void> {
  if (count <= 0) return;
  const pagesPerChunk = Math.max(1, Math.floor(READ_CHUNK / pageSize));
  const bufs = [new Uint8Array(pagesPerChunk * pageSize), new Uint8Array(pagesPerChunk * pageSize)];
  await withReader(file, async (read) => {
    const chunkCount = Math.ceil(count / pagesPerChunk);
    const issue = (c: number): Promise<number> => {
      const first = c * pagesPerChunk;
      const n = Math.min(pagesPerChunk, count - first);
      return readFull(read, bufs[c & 1]!.subarray(0, n * pageSize), (firstPgno - 1 + first) * pageSize);
    };
    let pending = issue(0);
    for (let c = 0; c < chunkCount; c++) {
      const got = await pending;
      const first = c * pagesPerChunk;
      const wanted = Math.min(pagesPerChunk, count - first);
      const whole = Math.floor(got / pageSize);
      // Past EOF there is nothing more to read; the remaining entries stay 0.
      if (whole === wanted && c + 1 < chunkCount) pending = issue(c + 1);
      pageChecksumsInto(bufs[c & 1]!, pageSize, firstPgno + first, whole, out, outIndex + first);
      if (whole < wanted) break;
    }
  });
}
