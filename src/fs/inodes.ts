import type { FileKind } from './names.js';

export const ROOT_INO = 1n;
export const PRIMARY_INO = 2n;
export const LAG_INO = 3n;
const FIRST_DYNAMIC_INO = 16n;

export interface InodeEntry {
  kind: FileKind;
  db: string;
}

/**
 * Stable node ids for the files of each database, allocated on first use
 * and kept for the life of the mount: the kernel may refer to a node id
 * long after a lookup, and a database that is dropped and re-created keeps
 * its ids, so cached dentries never point at an unrelated file.
 */
export class InodeTable {
  private next = FIRST_DYNAMIC_INO;
  private readonly byKey = new Map<string, bigint>();
  private readonly byIno = new Map<bigint, InodeEntry>();

  ino(kind: FileKind, db: string): bigint {
    const key = `${kind}\0${db}`;
    let ino = this.byKey.get(key);
    if (ino === undefined) {
      ino = this.next++;
      this.byKey.set(key, ino);
      this.byIno.set(ino, { kind, db });
    }
    return ino;
  }

  /** The existing id, without allocating. */
  peek(kind: FileKind, db: string): bigint | undefined {
    return this.byKey.get(`${kind}\0${db}`);
  }

  entry(ino: bigint): InodeEntry | undefined {
    return this.byIno.get(ino);
  }
}
