/**
 * The LiteFS filesystem: what the mount shows (databases, their journals,
 * WAL files, `-pos`, `.primary`, `.lag`) and how each request maps onto
 * the store. Other modules import only from here.
 */
export { LiteFS } from './filesystem.js';
export type { LiteFSOptions, NodeStatus } from './filesystem.js';
export { MountLocks } from './mount-locks.js';
