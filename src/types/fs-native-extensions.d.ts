/**
 * The part of fs-native-extensions litefs uses (the package ships no
 * types). On Linux its locks are open-file-description locks: F_OFD_SETLK
 * and F_OFD_SETLKW on the byte range [offset, offset + length); a length
 * of 0 means to the end of the file.
 */
declare module 'fs-native-extensions' {
  /** Takes the lock if it is free; false when another holder conflicts. Exclusive unless `shared`. */
  export function tryLock(fd: number, offset: number, length: number, opts?: { shared?: boolean }): boolean;
  export function unlock(fd: number, offset: number, length: number): void;
  const fsx: { tryLock: typeof tryLock; unlock: typeof unlock };
  export default fsx;
}
