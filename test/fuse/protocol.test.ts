import { describe, expect, it } from 'vitest';
import {
  FuseProtocolError,
  Opcode,
  decodeHeader,
  decodeRequest,
  packDirents,
  packDirentsPlus,
  parseMountinfo,
  FATTR,
  type RequestBody,
} from '../../src/fuse/index.js';
import { encodeInvalEntry, encodeInvalInode } from '../../src/fuse/protocol/notify.js';
import { splitTimeout, writeAttr, writeEntryOut } from '../../src/fuse/protocol/encode.js';
import { cstr, initIn, lkIn, readIn, request, u32s, u64s, writeIn } from './wire.js';

function body(msg: Buffer): RequestBody {
  return decodeRequest(msg, msg.length).body;
}

function expectMalformed(msg: Buffer, n = msg.length): FuseProtocolError {
  try {
    decodeRequest(msg, n);
  } catch (err) {
    expect(err).toBeInstanceOf(FuseProtocolError);
    expect((err as FuseProtocolError).code).toBe('ERR_FUSE_MALFORMED_MESSAGE');
    return err as FuseProtocolError;
  }
  throw new Error('expected a FuseProtocolError');
}

describe('request decoding', () => {
  it('decodes the header fields', () => {
    const h = decodeHeader(request(Opcode.LOOKUP, 42n, cstr('a'), { nodeid: 7n, uid: 1000, gid: 100, pid: 99 }), 42);
    expect(h).toMatchObject({ len: 42, opcode: Opcode.LOOKUP, unique: 42n, nodeid: 7n, uid: 1000, gid: 100, pid: 99, totalExtlen: 0 });
  });

  it('decodes INIT with flags2 only when FUSE_INIT_EXT is set', () => {
    const withExt = body(request(Opcode.INIT, 2n, initIn(45, (1 << 30) | 0b11, 0b1000)));
    expect(withExt).toEqual({
      op: 'init',
      init: { major: 7, minor: 45, maxReadahead: 131072, flags: (0b1000n << 32n) | (1n << 30n) | 3n },
    });
    const noExt = body(request(Opcode.INIT, 2n, initIn(45, 0b11, 0b1000)));
    expect(noExt).toEqual({ op: 'init', init: { major: 7, minor: 45, maxReadahead: 131072, flags: 3n } });
  });

  it('decodes name operations', () => {
    expect(body(request(Opcode.LOOKUP, 4n, cstr('file.db')))).toEqual({ op: 'lookup', name: 'file.db' });
    expect(body(request(Opcode.RENAME, 4n, Buffer.concat([u64s(9n), cstr('a'), cstr('b')])))).toEqual({
      op: 'rename',
      newParent: 9n,
      name: 'a',
      newName: 'b',
      flags: 0,
    });
    expect(body(request(Opcode.RENAME2, 4n, Buffer.concat([u64s(9n), u32s(1, 0), cstr('a'), cstr('b')])))).toEqual({
      op: 'rename',
      newParent: 9n,
      name: 'a',
      newName: 'b',
      flags: 1,
    });
    expect(body(request(Opcode.CREATE, 4n, Buffer.concat([u32s(0o102, 0o100644, 0o22, 0), cstr('x')])))).toEqual({
      op: 'create',
      name: 'x',
      req: { flags: 0o102, mode: 0o100644, umask: 0o22, openFlags: 0 },
    });
    expect(body(request(Opcode.SYMLINK, 4n, Buffer.concat([cstr('link'), cstr('/target')])))).toEqual({
      op: 'symlink',
      name: 'link',
      target: '/target',
    });
  });

  it('decodes SETATTR valid bits, NOW times and fh', () => {
    const b = Buffer.alloc(88);
    b.writeUInt32LE(FATTR.SIZE | FATTR.FH | FATTR.ATIME | FATTR.ATIME_NOW | FATTR.MTIME | FATTR.MODE, 0);
    b.writeBigUInt64LE(5n, 8); // fh
    b.writeBigUInt64LE(4096n, 16); // size
    b.writeBigUInt64LE(1700000000n, 40); // mtime
    b.writeUInt32LE(5, 60); // mtimensec
    b.writeUInt32LE(0o600, 68); // mode
    b.writeUInt32LE(77, 76); // uid (not valid → ignored)
    const r = body(request(Opcode.SETATTR, 4n, b));
    expect(r).toEqual({
      op: 'setattr',
      req: {
        valid: b.readUInt32LE(0),
        killSuidgid: false,
        fh: 5n,
        size: 4096n,
        atimeNs: 'now',
        mtimeNs: 1700000000_000000005n,
        mode: 0o600,
      },
    });
  });

  it('decodes READ, WRITE (data view) and lock owners', () => {
    expect(body(request(Opcode.READ, 4n, readIn(3n, 8192n, 4096, { readFlags: 2, lockOwner: 0xabcn, flags: 2 })))).toEqual({
      op: 'read',
      req: { fh: 3n, offset: 8192n, size: 4096, flags: 2, readFlags: 2, lockOwner: 0xabcn },
    });
    const w = body(request(Opcode.WRITE, 4n, writeIn(3n, 10n, Buffer.from('hello'), { writeFlags: 2, lockOwner: 9n })));
    expect(w.op).toBe('write');
    if (w.op !== 'write') return;
    expect(w.req).toMatchObject({ fh: 3n, offset: 10n, writeFlags: 2, lockOwner: 9n, cached: false });
    expect(w.req.data.toString()).toBe('hello');
  });

  it('decodes lock requests', () => {
    expect(body(request(Opcode.SETLKW, 4n, lkIn(1n, 0xdeadn, 100n, 0x7fffffffffffffffn, 1, 555)))).toEqual({
      op: 'setlk',
      wait: true,
      req: { fh: 1n, owner: 0xdeadn, flock: false, lock: { type: 'write', start: 100n, end: 0x7fffffffffffffffn, pid: 555 } },
    });
    expect(body(request(Opcode.GETLK, 4n, lkIn(1n, 2n, 0n, 0n, 0, 1, 1)))).toMatchObject({
      op: 'getlk',
      req: { flock: true, lock: { type: 'read' } },
    });
  });

  it('decodes BATCH_FORGET and leaves unknown opcodes as unsupported', () => {
    expect(body(request(Opcode.BATCH_FORGET, 4n, Buffer.concat([u32s(2, 0), u64s(5n, 1n, 6n, 3n)])))).toEqual({
      op: 'batchForget',
      items: [
        { nodeid: 5n, nlookup: 1n },
        { nodeid: 6n, nlookup: 3n },
      ],
    });
    expect(body(request(9999, 4n))).toEqual({ op: 'unsupported' });
  });

  it('ignores trailing extensions (total_extlen)', () => {
    const msg = request(Opcode.LOOKUP, 4n, Buffer.concat([cstr('n'), Buffer.alloc(6), Buffer.alloc(8, 0xff)]), { totalExtlen: 1 });
    expect(body(msg)).toEqual({ op: 'lookup', name: 'n' });
  });
});

describe('malformed messages give typed errors, never crashes', () => {
  it('rejects messages shorter than a header', () => {
    expect(expectMalformed(Buffer.alloc(10)).unique).toBeUndefined();
  });

  it('rejects a length field that disagrees with the bytes read, keeping unique', () => {
    const msg = request(Opcode.GETATTR, 77n, Buffer.alloc(16));
    const err = expectMalformed(msg, msg.length - 4);
    expect(err.unique).toBe(77n);
    expect(err.opcode).toBe(Opcode.GETATTR);
  });

  it('rejects truncated arguments of every fixed-size request', () => {
    const cases: [number, Buffer][] = [
      [Opcode.INIT, initIn(45, 0).subarray(0, 12)],
      [Opcode.READ, readIn(1n, 0n, 10).subarray(0, 30)],
      [Opcode.WRITE, writeIn(1n, 0n, Buffer.from('abc')).subarray(0, 41)],
      [Opcode.SETATTR, Buffer.alloc(60)],
      [Opcode.GETLK, lkIn(1n, 1n, 0n, 0n, 0, 0).subarray(0, 40)],
      [Opcode.FORGET, Buffer.alloc(4)],
      [Opcode.INTERRUPT, Buffer.alloc(7)],
      [Opcode.RELEASE, Buffer.alloc(16)],
      [Opcode.FLUSH, Buffer.alloc(20)],
      [Opcode.OPEN, Buffer.alloc(4)],
    ];
    for (const [op, args] of cases) expectMalformed(request(op, 5n, args));
  });

  it('rejects names without a NUL, write sizes beyond the message, absurd batch counts, bad lock types', () => {
    expectMalformed(request(Opcode.LOOKUP, 5n, Buffer.from('no-terminator')));
    expectMalformed(request(Opcode.RENAME, 5n, Buffer.concat([u64s(1n), cstr('a'), Buffer.from('b')])));
    const w = writeIn(1n, 0n, Buffer.from('abcd'));
    w.writeUInt32LE(1 << 20, 16);
    expectMalformed(request(Opcode.WRITE, 5n, w));
    expectMalformed(request(Opcode.BATCH_FORGET, 5n, Buffer.concat([u32s(0xffffffff, 0), u64s(1n, 1n)])));
    expectMalformed(request(Opcode.SETLK, 5n, lkIn(1n, 1n, 0n, 0n, 7, 0)));
    expectMalformed(request(Opcode.LOOKUP, 5n, cstr('x'), { totalExtlen: 200 }));
  });

  it('survives 2000 random garbage buffers with only FuseProtocolError', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    let decoded = 0;
    for (let i = 0; i < 2000; i++) {
      const len = rnd() % 200;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = rnd() & 0xff;
      if (len >= 8 && i % 2 === 0) {
        buf.writeUInt32LE(len, 0); // consistent length, random opcode/args
        buf.writeUInt32LE(1 + (rnd() % 52), 4);
        if (len >= 38) buf.writeUInt16LE(0, 36);
      }
      try {
        decodeRequest(buf, len);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(FuseProtocolError);
      }
    }
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('reply encoding', () => {
  it('splits fractional timeouts into sec + nsec and clamps nonsense to 0', () => {
    expect(splitTimeout(1.5)).toEqual([1n, 500_000_000]);
    expect(splitTimeout(0)).toEqual([0n, 0]);
    expect(splitTimeout(-3)).toEqual([0n, 0]);
    expect(splitTimeout(Number.NaN)).toEqual([0n, 0]);
  });

  it('lays out fuse_attr and a negative entry', () => {
    const b = Buffer.alloc(128);
    writeAttr(b, 0, {
      ino: 9n,
      size: 1000n,
      atimeNs: 1_500_000_000n,
      mtimeNs: 2n,
      ctimeNs: 3_000_000_001n,
      mode: 0o100644,
      nlink: 1,
      uid: 5,
      gid: 6,
    });
    expect(b.readBigUInt64LE(0)).toBe(9n);
    expect(b.readBigUInt64LE(16)).toBe(2n); // blocks = ceil(1000/512)
    expect(b.readBigUInt64LE(24)).toBe(1n); // atime sec
    expect(b.readUInt32LE(48)).toBe(500_000_000); // atime nsec
    expect(b.readBigUInt64LE(40)).toBe(3n);
    expect(b.readUInt32LE(56)).toBe(1);
    expect(b.readUInt32LE(60)).toBe(0o100644);
    expect(b.readUInt32LE(80)).toBe(4096); // blksize default
    const e = Buffer.alloc(128, 0xff);
    writeEntryOut(e, 0, { nodeid: 0n, entryTimeoutSec: 30 });
    expect(e.readBigUInt64LE(0)).toBe(0n);
    expect(e.readBigUInt64LE(16)).toBe(30n);
    expect(e.subarray(40).every((x) => x === 0)).toBe(true);
  });

  it('packs dirents 8-byte aligned with next-offset cookies and stops when full', () => {
    const entries = [
      { name: 'a', ino: 2n, mode: 0o100644 },
      { name: 'bbbbbbbbb', ino: 3n, mode: 0o40755 },
      { name: 'c', ino: 4n, mode: 0o100644 },
    ];
    const all = packDirents(entries, 10n, 4096);
    expect(all.count).toBe(3);
    expect(all.payload.length).toBe(32 + 40 + 32);
    expect(all.payload.readBigUInt64LE(8)).toBe(11n);
    expect(all.payload.readUInt32LE(16)).toBe(1);
    expect(all.payload.readUInt32LE(20)).toBe(8); // DT_REG
    expect(all.payload.readUInt32LE(32 + 20)).toBe(4); // DT_DIR
    expect(all.payload.subarray(32 + 24, 32 + 33).toString()).toBe('bbbbbbbbb');
    expect(all.payload.readBigUInt64LE(32 + 40 + 8)).toBe(13n);
    const some = packDirents(entries, 0n, 80);
    expect(some.count).toBe(2);
    expect(packDirents(entries, 0n, 20).payload.length).toBe(0);
    const plus = packDirentsPlus([{ name: 'x', ino: 5n, mode: 0o100644, nextOffset: 99n, entry: { nodeid: 0n } }], 0n, 4096);
    expect(plus.payload.length).toBe(128 + 32);
    expect(plus.payload.readBigUInt64LE(128 + 8)).toBe(99n);
  });

  it('encodes notifications with unique 0, the code in error and a NUL after names', () => {
    const inode = encodeInvalInode(7n, -1n, 0n);
    expect(inode.readUInt32LE(0)).toBe(40);
    expect(inode.readInt32LE(4)).toBe(2);
    expect(inode.readBigUInt64LE(8)).toBe(0n);
    expect(inode.readBigInt64LE(24)).toBe(-1n);
    const entry = encodeInvalEntry(1n, 'db-journal', true);
    expect(entry.length).toBe(16 + 16 + 10 + 1);
    expect(entry.readInt32LE(4)).toBe(3);
    expect(entry.readUInt32LE(24)).toBe(10);
    expect(entry.readUInt32LE(28)).toBe(1);
    expect(entry[entry.length - 1]).toBe(0);
  });
});

describe('mountinfo parsing', () => {
  it('reads fuse entries with escaped paths and the connection minor', () => {
    const text = [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      '42 22 0:39 / /tmp/with\\040space rw,nosuid,nodev,relatime - fuse.memfs memfs rw,user_id=0,group_id=0',
      'garbage line',
    ].join('\n');
    const e = parseMountinfo(text);
    expect(e).toHaveLength(2);
    expect(e[1]).toMatchObject({ mountpoint: '/tmp/with space', fstype: 'fuse.memfs', source: 'memfs', major: 0, minor: 39 });
  });
});
