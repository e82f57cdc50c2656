import { readFile } from 'node:fs/promises';

/** One line of /proc/<pid>/mountinfo (proc(5)). */
export interface MountEntry {
  id: number;
  parentId: number;
  /** Device major:minor; for FUSE the minor names /sys/fs/fuse/connections/<minor>. */
  major: number;
  minor: number;
  root: string;
  mountpoint: string;
  options: string;
  fstype: string;
  source: string;
  superOptions: string;
}

/** Undoes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of mountinfo paths. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text; malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || sep + 3 > fields.length) continue;
    const [maj, min] = (fields[2] ?? '').split(':');
    const major = Number(maj);
    const minor = Number(min);
    if (!Number.isInteger(major) || !Number.isInteger(minor)) continue;
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      major,
      minor,
      root: unescapeMountField(fields[3]!),
      mountpoint: unescapeMountField(fields[4]!),
      options: fields[5]!,
      fstype: fields[sep + 1]!,
      source: unescapeMountField(fields[sep + 2]!),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return out;
}

export async function readMountinfo(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

export function isFuseEntry(e: MountEntry): boolean {
  return e.fstype === 'fuse' || e.fstype === 'fuseblk' || e.fstype.startsWith('fuse.') || e.fstype.startsWith('fuseblk.');
}

/** FUSE mounts whose mount point is exactly `mountpoint`, topmost last. */
export async function fuseMountsAt(mountpoint: string): Promise<MountEntry[]> {
  return (await readMountinfo()).filter((e) => e.mountpoint === mountpoint && isFuseEntry(e));
}
