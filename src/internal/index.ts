/** Small utilities every module may use: coded errors, logging, timing, IDs. */
export { CodedError, describeError, hasCode, isErrno } from './errors.js';
export { createLogger, silentLogger } from './log.js';
export type { ChildOptions, Logger } from './log.js';
export { Mutex } from './mutex.js';
export { sleep, withTimeout } from './time.js';
export { formatNodeID } from './ids.js';
